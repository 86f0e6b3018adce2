/**
 * The benchmark's command line: `npm run bench -- [--rounds N] [--duration S] [--tenants N] [--json FILE] [--quick]`.
 * `--quick` is a smoke run (one short round, a small memory fill); flags given with it still win.
 */
import { parseArgs } from 'node:util'

export interface BenchOptions {
  /** Alternating rounds over the targets; figures are the median over rounds. */
  rounds: number
  /** Length of each measured run. */
  durationSeconds: number
  /** Load on each target before the first round, so no round measures a cold JIT. */
  warmupSeconds: number
  /** Distinct tenants the memory row caches (then asks for again). */
  tenants: number
  /** Offered rate of the miss row: modest, so the upstream bulkhead never sheds. */
  missRatePerSecond: number
  /** Redis commands are counted over an idle interval this long before each Redis run, to see other clients. */
  redisIdleSeconds: number
  /** Where to write the results as JSON, if anywhere. */
  jsonFile: string | undefined
  quick: boolean
}

const FULL_RUN: Omit<BenchOptions, 'jsonFile' | 'quick'> = {
  rounds: 5,
  durationSeconds: 5,
  warmupSeconds: 3,
  tenants: 100_000,
  missRatePerSecond: 100,
  redisIdleSeconds: 1,
}

const QUICK_RUN: Omit<BenchOptions, 'jsonFile' | 'quick'> = {
  rounds: 1,
  durationSeconds: 1,
  warmupSeconds: 0.5,
  tenants: 2_000,
  missRatePerSecond: 50,
  redisIdleSeconds: 0.5,
}

export class BenchUsageError extends Error {
  override name = 'BenchUsageError'
}

const FLAGS = {
  rounds: { type: 'string' },
  duration: { type: 'string' },
  tenants: { type: 'string' },
  json: { type: 'string' },
  quick: { type: 'boolean', default: false },
} as const

export function parseBenchOptions (args: string[]): BenchOptions {
  const values = parseFlags(args)
  const defaults = values.quick ? QUICK_RUN : FULL_RUN
  return {
    ...defaults,
    rounds: positive('--rounds', values.rounds, defaults.rounds, Number.isInteger),
    durationSeconds: positive('--duration', values.duration, defaults.durationSeconds, Number.isFinite),
    tenants: positive('--tenants', values.tenants, defaults.tenants, Number.isInteger),
    jsonFile: values.json,
    quick: values.quick,
  }
}

function parseFlags (args: string[]) {
  try {
    return parseArgs({ args, strict: true, options: FLAGS }).values
  } catch (error) {
    // node:util reports an unknown flag or a missing value as a TypeError with an ERR_PARSE_ARGS_* code.
    throw new BenchUsageError((error as Error).message)
  }
}

function positive (flag: string, given: string | undefined, fallback: number, isKind: (value: number) => boolean): number {
  if (given === undefined) return fallback
  const value = Number(given)
  if (given.trim() === '' || !isKind(value) || value <= 0) {
    throw new BenchUsageError(`${flag} ${JSON.stringify(given)} must be a positive ${isKind === Number.isInteger ? 'integer' : 'number'}`)
  }
  return value
}
