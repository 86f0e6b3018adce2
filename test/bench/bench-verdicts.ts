/**
 * What the benchmark measured, and its verdict on each target of issue 14 (item 8, "Done when"). Miss and
 * memory figures are reported beside them without a verdict: their targets were issue 9's. The verdicts
 * report; nothing here is a timed assertion.
 */

import { median } from './http-load.js'

export const HitRows = {
  bare: 'bare Fastify route',
  conventional: 'conventional build',
  // Issue 14's estimate of what the framework's own means reach (test/bench/probe-fastify.ts). No verdict.
  probe: 'probe: one pino line, rate limit, bytes once',
  apiKey: 'hit, API key',
  // The same server without its access line (LOG_LEVEL=warn): what pino and SonicBoom cost per hit. No verdict.
  noAccessLine: 'hit, API key, no access line',
  jwt: 'hit, repeated JWT',
  redis: 'hit, Redis mode',
} as const
export type HitRowName = typeof HitRows[keyof typeof HitRows]

/** The rows that are the service; the others are baselines serving its bytes and headers. */
export const SERVICE_ROWS: readonly HitRowName[] = [HitRows.apiKey, HitRows.noAccessLine, HitRows.jwt, HitRows.redis]

export const HIT_EFFICIENCY_MIN = 0.65
/** An API-key hit may cost at most this share of the conventional build's CPU per request. */
export const CONVENTIONAL_COST_MAX_RATIO = 1
/** Redis mode may cost at most this share of the in-process (API key) CPU per hit: within 10 %. */
export const REDIS_COST_MAX_RATIO = 1.1
export const REDIS_COMMANDS_PER_HIT_MAX = 0.01
export const FIXED_RATE_OF_BARE_SATURATION = 0.5
// A server busy less of the time than this during a saturation run was waiting for the load generator.
export const SATURATED_CORE_BUSY_MIN = 0.9
export const FIXED_RATE_P99_MAX_RATIO = 2
export const MISS_UPSTREAM_LATENCY_MS = 20

export interface HitRow {
  target: HitRowName
  /** Server CPU time (user + system) per answered request at saturation; median over rounds. */
  cpuMicrosPerRequest: number
  /** The same, each round in order: the spread the median is taken over. */
  cpuMicrosPerRequestByRound: number[]
  /** The bare route's CPU per request over this row's (`cpuRatioByRound`): 1 costs what Fastify alone costs. */
  efficiency: number
  /** At saturation (closed loop); moves with whatever else the machine runs. */
  requestsPerSecond: number
  /**
   * The share of its core the server used during its saturation runs (CPU seconds per second, median over
   * rounds). Under SATURATED_CORE_BUSY_MIN the load generator, not the server, set the pace.
   */
  coreBusy: number
  /**
   * The same during its fixed-rate runs. Clients arriving on their own give a server fewer requests per
   * wake-up than a closed loop does, so each costs more; near 1, answers queue and p99 measures the queue.
   */
  coreBusyAtFixedRate: number
  /**
   * The share of time the hypervisor gave another guest (test/bench/host-steal.ts): of the server's core
   * during the row's saturation runs, of every core (the generator's too) during its fixed-rate runs;
   * medians over rounds.
   */
  hostStealAtSaturation: number
  hostStealAtFixedRate: number
  /** At the fixed rate, half the bare route's saturation. */
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
}

export interface RedisCommandCount {
  /** Which Redis: the bench's own, or a shared one. */
  redis: string
  /** Commands Redis processed during the Redis row's saturation runs, the bench's own INFO left out. */
  commands: number
  hits: number
  commandsPerHit: number
  /** The same count over idle intervals before each run: other clients of this Redis, or the BFF's background. */
  idleCommandsPerSecond: number
  /** Whether the idle rate alone would explain a quarter of the commands allowed: then the count is not only the BFF's. */
  polluted: boolean
  /** The Redis server's own CPU time per hit, when it is the bench's own (a shared one's is not the BFF's doing). */
  serverCpuMicrosPerHit: number | undefined
}

// A count is polluted when the idle rate alone would explain this share of the commands a run may use.
const POLLUTED_SHARE_OF_ALLOWANCE = 0.25

export interface RedisTally {
  commands: number
  hits: number
  runSeconds: number
  idleCommands: number
  idleSeconds: number
  serverCpuMicros: number
}

export function countRedisCommands (tally: RedisTally, ownServer: boolean, redis: string): RedisCommandCount {
  const idleCommandsPerSecond = tally.idleCommands / Math.max(tally.idleSeconds, Number.EPSILON)
  const allowance = REDIS_COMMANDS_PER_HIT_MAX * tally.hits
  return {
    redis,
    commands: tally.commands,
    hits: tally.hits,
    commandsPerHit: tally.commands / Math.max(tally.hits, 1),
    idleCommandsPerSecond,
    polluted: idleCommandsPerSecond * tally.runSeconds >= POLLUTED_SHARE_OF_ALLOWANCE * allowance,
    serverCpuMicrosPerHit: ownServer ? tally.serverCpuMicros / Math.max(tally.hits, 1) : undefined,
  }
}

export interface MissRow {
  ratePerSecond: number
  /** Through the BFF, every request a tenant it has not cached; medians over rounds. */
  p50Ms: number
  p99Ms: number
  /** The simulator asked directly at the same rate: the upstream's latency as a client sees it. */
  upstreamP50Ms: number
  upstreamP99Ms: number
  /** Median over rounds of the BFF's p50 less the upstream's p50 in the same round. */
  overheadP50Ms: number
  requests: number
  upstreamCalls: number
  non2xx: number
  errors: number
}

export interface RssSample {
  /** 0: the fresh server; 1: the first pass over the tenants; 2: the further pass over the same tenants. */
  pass: number
  /** Tenants asked for so far in this pass. */
  tenants: number
  rssMb: number
}

export interface MemoryRow {
  tenants: number
  samples: RssSample[]
  non2xx: number
  errors: number
  /** The cgroup memory limit the BFF ran under; undefined when the machine allowed none. */
  memoryLimitMb: number | undefined
}

export interface BenchResults {
  fixedRatePerSecond: number
  hits: HitRow[]
  /** Absent when no Redis answered. */
  redisCommands: RedisCommandCount | undefined
  miss: MissRow
  memory: MemoryRow
}

export type VerdictStatus = 'PASS' | 'MISS' | 'SKIP'

export interface Verdict {
  id: string
  label: string
  status: VerdictStatus
  measured: string
}

interface Target {
  id: string
  label: string
}

export const Targets = {
  conventionalCost: {
    id: 'conventional-cost',
    label: `${HitRows.apiKey}: CPU per hit no more than the ${HitRows.conventional}'s`,
  },
  hitEfficiency: { id: 'hit-efficiency', label: `${HitRows.apiKey}: CPU efficiency ≥ ${HIT_EFFICIENCY_MIN} of the ${HitRows.bare}'s (same headers)` },
  redisCommands: { id: 'redis-commands', label: `${HitRows.redis}: ≤ ${REDIS_COMMANDS_PER_HIT_MAX} Redis commands per hit` },
  redisCost: {
    id: 'redis-cost',
    label: `${HitRows.redis}: CPU per hit within ${Math.round((REDIS_COST_MAX_RATIO - 1) * 100)} % of the in-process (${HitRows.apiKey}) CPU`,
  },
  p99ApiKey: p99Target('p99-api-key', HitRows.apiKey),
  p99Jwt: p99Target('p99-jwt', HitRows.jwt),
  p99Redis: p99Target('p99-redis', HitRows.redis),
} as const satisfies Record<string, Target>

function p99Target (id: string, row: HitRowName): Target {
  return { id, label: `${row}: p99 at half the bare route's saturation ≤ ${FIXED_RATE_P99_MAX_RATIO}× the bare route's p99` }
}

/**
 * One row's CPU per request over another's: the median over rounds of the ratio of their figures in the
 * same round. Rounds alternate between the rows, so a round's two figures were measured within a minute
 * of each other, while on a shared machine the host's load moves CPU per request by up to 2× from one
 * minute to the next: a ratio of the medians, each taken over other minutes, would carry that swing.
 */
export function cpuRatioByRound (rowByRound: number[], baseByRound: number[]): number {
  return median(rowByRound.map((cpu, round) => cpu / (baseByRound[round] ?? Number.NaN)))
}

export function judge (results: BenchResults): Verdict[] {
  const row = (name: HitRowName): HitRow | undefined => results.hits.find((hit) => hit.target === name)
  const bare = row(HitRows.bare)
  const apiKey = row(HitRows.apiKey)
  const redis = row(HitRows.redis)
  const cpuRatio = (hit: HitRow | undefined, base: HitRow | undefined) =>
    hit === undefined || base === undefined ? undefined : cpuRatioByRound(hit.cpuMicrosPerRequestByRound, base.cpuMicrosPerRequestByRound)
  const p99Ratio = (hit: HitRow | undefined) => hit === undefined || bare === undefined ? undefined : hit.p99Ms / bare.p99Ms
  const commands = results.redisCommands
  return [
    atMost(Targets.conventionalCost, cpuRatio(apiKey, row(HitRows.conventional)), CONVENTIONAL_COST_MAX_RATIO, 2,
      `× the ${HitRows.conventional}'s CPU per hit`),
    atLeast(Targets.hitEfficiency, apiKey?.efficiency, HIT_EFFICIENCY_MIN, 2),
    atMost(Targets.redisCommands, commands?.commandsPerHit, REDIS_COMMANDS_PER_HIT_MAX, 4,
      commands?.polluted === true ? ' commands per hit (polluted by other clients: see above)' : ' commands per hit'),
    atMost(Targets.redisCost, cpuRatio(redis, apiKey), REDIS_COST_MAX_RATIO, 2, '× the in-process CPU per hit'),
    atMost(Targets.p99ApiKey, p99Ratio(apiKey), FIXED_RATE_P99_MAX_RATIO, 2, '×'),
    atMost(Targets.p99Jwt, p99Ratio(row(HitRows.jwt)), FIXED_RATE_P99_MAX_RATIO, 2, '×'),
    atMost(Targets.p99Redis, p99Ratio(redis), FIXED_RATE_P99_MAX_RATIO, 2, '×'),
  ]
}

/**
 * The spread of the samples from the end of the first pass on: by then every tenant has been cached
 * once, so a bounded cache is full and evicting, and memory should no longer grow. Reported, not judged.
 */
export function steadySpreadMb (samples: RssSample[]): number {
  const lastOfFirstPass = samples.findLastIndex((sample) => sample.pass === 1)
  const steady = samples.slice(lastOfFirstPass)
  if (lastOfFirstPass === -1 || steady.length < 2) return Number.NaN
  const values = steady.map((sample) => sample.rssMb)
  return Math.max(...values) - Math.min(...values)
}

function atLeast (target: Target, value: number | undefined, minimum: number, digits: number, unit = ''): Verdict {
  return verdict(target, value, (measured) => measured >= minimum, digits, unit)
}

function atMost (target: Target, value: number | undefined, maximum: number, digits: number, unit = ''): Verdict {
  return verdict(target, value, (measured) => measured <= maximum, digits, unit)
}

function verdict (target: Target, value: number | undefined, meets: (value: number) => boolean, digits: number, unit: string): Verdict {
  // Only a row the run could not have (no Redis answered) is skipped; any other gap is a failed measurement.
  if (value === undefined) return { ...target, status: 'SKIP', measured: 'not measured' }
  if (!Number.isFinite(value)) return { ...target, status: 'MISS', measured: 'no valid measurement' }
  return { ...target, status: meets(value) ? 'PASS' : 'MISS', measured: `${value.toFixed(digits)}${unit}` }
}
