/**
 * The benchmark's printed report: the hit table (with each round's CPU per request beside the median),
 * the Redis count, the miss row, the memory samples, then one PASS/MISS line per target. Tables are
 * Markdown, so a run pastes into the README as it is.
 */
import {
  MISS_UPSTREAM_LATENCY_MS,
  REDIS_COMMANDS_PER_HIT_MAX,
  SATURATED_CORE_BUSY_MIN,
  steadySpreadMb,
  type BenchResults,
  type Verdict,
} from './bench-verdicts.js'
import { stealPercent } from './host-steal.js'

export interface RunDescription {
  machine: string
  method: string
}

export function renderReport (run: RunDescription, results: BenchResults, verdicts: Verdict[]): string {
  return [
    run.machine,
    run.method,
    '',
    hitTable(results),
    ...unsaturatedWarning(results),
    ...queuedAtFixedRateWarning(results),
    '',
    redisLine(results),
    '',
    missTable(results),
    '',
    memoryTable(results),
    '',
    ...verdicts.map((verdict) => `${verdict.status.padEnd(4)}  ${verdict.label}: ${verdict.measured}`),
    '',
  ].join('\n')
}

function hitTable ({ hits, fixedRatePerSecond }: BenchResults): string {
  const rate = `@ ${Math.round(fixedRatePerSecond)} req/s`
  return markdownTable(
    ['target', 'CPU µs/req (median)', 'CPU µs/req by round', 'efficiency', 'req/s (saturation)', 'core busy (saturation / fixed rate)', 'host steal % (server core at saturation / every core at the fixed rate)', `p50 ms ${rate}`, `p99 ms ${rate}`, 'non-2xx', 'errors'],
    hits.map((row) => [
      row.target,
      row.cpuMicrosPerRequest.toFixed(1),
      row.cpuMicrosPerRequestByRound.map((cpu) => cpu.toFixed(1)).join(' / '),
      row.efficiency.toFixed(2),
      String(Math.round(row.requestsPerSecond)),
      `${row.coreBusy.toFixed(2)} / ${row.coreBusyAtFixedRate.toFixed(2)}`,
      `${stealPercent(row.hostStealAtSaturation)} / ${stealPercent(row.hostStealAtFixedRate)}`,
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      String(row.non2xx),
      String(row.errors),
    ])
  )
}

/**
 * Rows whose server waited for the load generator in their saturation runs. Such a server wakes up for
 * fewer requests at a time, so its CPU per request is taken at another load than a saturated row's:
 * efficiencies and CPU ratios against it compare two loads, not two builds.
 */
function unsaturatedWarning ({ hits }: BenchResults): string[] {
  const waiting = hits.filter((row) => row.coreBusy < SATURATED_CORE_BUSY_MIN)
  if (waiting.length === 0) return []
  return [`WARNING: not saturated (its core busy under ${SATURATED_CORE_BUSY_MIN} of the time, the load generator set the pace): ` +
    `${waiting.map((row) => `${row.target} (${row.coreBusy.toFixed(2)})`).join(', ')}; ratios against these rows compare two loads`]
}

/**
 * Rows whose server was about as busy as it can be at the fixed rate: what fell due during any pause (a
 * collection, a stolen core) waits for a server with little spare time to catch up, so their p99 is that
 * queue's, and a ratio against the bare route's compares a nearly full server with a half-idle one.
 */
function queuedAtFixedRateWarning ({ hits }: BenchResults): string[] {
  const full = hits.filter((row) => row.coreBusyAtFixedRate >= SATURATED_CORE_BUSY_MIN)
  if (full.length === 0) return []
  return [`WARNING: at the fixed rate, core busy ${SATURATED_CORE_BUSY_MIN} or more of the time (answers queue; p99 is the queue's): ` +
    full.map((row) => `${row.target} (${row.coreBusyAtFixedRate.toFixed(2)})`).join(', ')]
}

function redisLine ({ redisCommands }: BenchResults): string {
  if (redisCommands === undefined) return 'Redis: none answered, the Redis row was not measured'
  const { redis, commands, hits, commandsPerHit, idleCommandsPerSecond, polluted, serverCpuMicrosPerHit } = redisCommands
  const serverCpu = serverCpuMicrosPerHit === undefined ? '' : `; the Redis server's own CPU: ${serverCpuMicrosPerHit.toFixed(1)} µs per hit`
  const line = `Redis (${redis}): ${commands} commands during the Redis row's saturation runs for ${hits} hits, ` +
    `${commandsPerHit.toFixed(4)} per hit (INFO stats, the bench's own INFO left out); while idle: ` +
    `${idleCommandsPerSecond.toFixed(1)} commands/s${serverCpu}`
  if (!polluted) return line
  return `${line}\nWARNING: other clients of this Redis (or the BFF's background) account for a quarter or more of the ` +
    `${REDIS_COMMANDS_PER_HIT_MAX} commands per hit allowed: the count is polluted; run on a quiet Redis (BENCH_REDIS_URL)`
}

function missTable ({ miss }: BenchResults): string {
  const heading = `miss: every request a tenant the BFF has not cached, the upstream answering after ${MISS_UPSTREAM_LATENCY_MS} ms, ` +
    `${miss.ratePerSecond} req/s offered`
  const table = markdownTable(['path', 'p50 ms', 'p99 ms', 'requests', 'upstream calls', 'non-2xx', 'errors'], [
    ['upstream alone (the simulator, asked directly)', miss.upstreamP50Ms.toFixed(2), miss.upstreamP99Ms.toFixed(2), '', '', '', ''],
    ['BFF miss', miss.p50Ms.toFixed(2), miss.p99Ms.toFixed(2), String(miss.requests), String(miss.upstreamCalls), String(miss.non2xx), String(miss.errors)],
  ])
  const overNominal = miss.p50Ms - MISS_UPSTREAM_LATENCY_MS
  return `${heading}\n${table}\nBFF p50 over the upstream's p50 (median of rounds): ${miss.overheadP50Ms.toFixed(2)} ms; ` +
    `over the nominal ${MISS_UPSTREAM_LATENCY_MS} ms: ${overNominal.toFixed(2)} ms`
}

function memoryTable ({ memory }: BenchResults): string {
  const limit = memory.memoryLimitMb === undefined
    ? 'no memory limit (no cgroup could be made: V8 sizes its heap from the whole host)'
    : `a ${memory.memoryLimitMb} MiB memory cgroup, the Deployment's limit`
  const heading = `memory: RSS (VmRSS) of a fresh BFF with the defaults, in ${limit}, while it caches ${memory.tenants} distinct tenants, ` +
    `then while it is asked for all of them again (non-2xx: ${memory.non2xx}, errors: ${memory.errors})`
  const passName = ['fresh', 'first pass', 'further pass']
  const table = markdownTable(['after', 'tenants', 'RSS MB'], memory.samples.map((sample) => [
    passName[sample.pass] ?? `pass ${sample.pass}`,
    String(sample.tenants),
    sample.rssMb.toFixed(1),
  ]))
  const peakMb = Math.max(...memory.samples.map((sample) => sample.rssMb))
  return `${heading}\n${table}\nRSS at most ${peakMb.toFixed(1)} MB; from the end of the first pass on within ` +
    `${steadySpreadMb(memory.samples).toFixed(1)} MB`
}

export function markdownTable (headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n')
}
