/**
 * The hit rows: two baselines serving the service's hit (its body and header fields, captured from a real
 * hit while the cache warms) and the BFF answering a cached list (API key, repeated JWT, Redis mode), in
 * alternating rounds, each on a fresh set of server processes, first at saturation (each server's CPU per
 * request, requests/s, Redis commands per hit), then at a fixed rate of half the bare route's saturation
 * (p50/p99). Every row but the JWT one is asked with the same API key, so every server reads the same
 * request bytes and writes the same answer. The in-process and Redis-mode hits run on two processes each
 * at saturation (TWIN_ROWS).
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { DEMO_API_KEY_ALL_TENANTS } from '../dev/demo-credentials.js'
import type { HitAnswer } from './baseline-server.js'
import type { BenchOptions } from './bench-options.js'
import { CONNECTIONS, progress, type BenchRedis, type Fixture } from './bench-fixture.js'
import { Baselines, cpuMicrosOf, startBaseline, startBff, stopServer, type BenchServer } from './bench-processes.js'
import { serverCpu } from './cpu-pinning.js'
import { readCpuTimes, stealPercent, stealShareBetween } from './host-steal.js'
import {
  countRedisCommands,
  cpuRatioByRound,
  FIXED_RATE_OF_BARE_SATURATION,
  HitRows,
  SERVICE_ROWS,
  type HitRow,
  type HitRowName,
  type RedisCommandCount,
  type RedisTally,
} from './bench-verdicts.js'
import { median, saturate, type LatencyResult, type SaturationResult } from './http-load.js'
import { offerFixedRateFromC } from './open-loop.js'

const HIT_PATH = '/tenants/demo-shop/phones'
const MICROS_PER_SECOND = 1e6
const MICROS_PER_MILLI = 1e3
// Node's HTTP server writes these on every answer itself: they are not part of the answer the baselines copy.
const WRITTEN_BY_NODE = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'])

interface HitTarget {
  name: HitRowName
  server: BenchServer
  headers: Record<string, string>
  /** A second process of the row (TWIN_ROWS), started for the saturation rounds only. */
  twin?: true
}

/**
 * The rows measured on two processes each round, their CPU per request taken over both: the in-process
 * and Redis-mode hits, which a verdict holds within 10 % of each other, while a process of a build can sit
 * 15–20 % above another of the same build for its life (withFreshTargets).
 */
export const TWIN_ROWS: readonly HitRowName[] = [HitRows.apiKey, HitRows.redis]

export interface SaturationRound extends SaturationResult {
  target: HitRowName
  round: number
  /** Of the row's processes this round (two for TWIN_ROWS). */
  processes: number
  cpuMicrosPerRequest: number
  /** The share of the server's core (of every core, unpinned) the hypervisor took during the run. */
  hostSteal: number
}

export interface FixedRateRound extends LatencyResult {
  target: HitRowName
  round: number
  /** The share of its core the server used: near 1, answers queue behind each other and p99 is that queue. */
  coreBusy: number
  /** The share of every core the hypervisor took during the run. */
  hostSteal: number
}

export interface HitMeasurements {
  fixedRatePerSecond: number
  hits: HitRow[]
  redisCommands: RedisCommandCount | undefined
  saturation: SaturationRound[]
  fixedRate: FixedRateRound[]
}

export async function measureHits (options: BenchOptions, fixture: Fixture): Promise<HitMeasurements> {
  const redisTally: RedisTally = { commands: 0, hits: 0, idleCommands: 0, idleSeconds: 0, runSeconds: 0, serverCpuMicros: 0 }
  const saturation: SaturationRound[] = []
  let answer: HitAnswer | undefined
  for (let round = 1; round <= options.rounds; round++) {
    answer = await withFreshTargets(fixture, answer, round, true, async (targets) => {
      for (const target of targets) await saturate(target.server.origin + HIT_PATH, target.headers, CONNECTIONS, options.warmupSeconds)
      for (const target of targets) {
        const counted = target.name === HitRows.redis ? fixture.redis : undefined
        saturation.push(await measureSaturation(options, target, round, counted, redisTally))
      }
    })
  }
  const byRow = byRowAndRound(saturation)
  const bareSaturation = median(byRow.filter((run) => run.target === HitRows.bare).map((run) => run.requestsPerSecond))
  const fixedRatePerSecond = Math.max(1, Math.round(bareSaturation * FIXED_RATE_OF_BARE_SATURATION))
  const fixedRate: FixedRateRound[] = []
  for (let round = 1; round <= options.rounds; round++) {
    // Without the second processes: the fixed rate measures one of each row, and an idle twin would share its core.
    await withFreshTargets(fixture, answer, round, false, async (targets) => {
      fixedRate.push(...await measureAtFixedRate(options, targets, fixedRatePerSecond, round))
    })
  }
  const { redis } = fixture
  return {
    fixedRatePerSecond,
    // The rows in the order they were measured.
    hits: hitRows([...new Set(saturation.map((run) => run.target))], byRow, fixedRate),
    redisCommands: redis.counter === undefined ? undefined : countRedisCommands(redisTally, redis.server !== undefined, redis.description),
    saturation: byRow,
    fixedRate,
  }
}

/**
 * Runs `measure` over servers started for it alone and stopped after it. A process of a build can cost
 * 15–20 % more per request than another process of the same build for its whole life (code and heap
 * placement: two bench runs of the same build put one in-process server at 43–46 µs per hit and the next
 * at 37 µs), so each round measures a fresh set of processes, and the medians over rounds are over
 * processes too. The answer the baselines serve is captured in the first round and kept, so every round
 * writes the same bytes. Returns that answer.
 */
async function withFreshTargets (
  fixture: Fixture,
  captured: HitAnswer | undefined,
  round: number,
  withTwins: boolean,
  measure: (targets: HitTarget[]) => Promise<void>
): Promise<HitAnswer> {
  const { targets, answer } = await startHitTargets(fixture, captured, withTwins)
  try {
    const twinned = new Set(targets.filter((target) => target.twin === true).map((target) => target.name))
    const names = [...new Set(targets.map((target) => target.name))]
    progress(`round ${round}: started ${names.map((name) => twinned.has(name) ? `${name} (two processes)` : name).join(', ')}`)
    await measure(targets)
    return answer
  } finally {
    // Two rows share the in-process server: each server is stopped once.
    await Promise.all([...new Set(targets.map((target) => target.server))].map(stopServer))
  }
}

async function startHitTargets (fixture: Fixture, captured: HitAnswer | undefined, withTwins: boolean): Promise<{ targets: HitTarget[], answer: HitAnswer }> {
  const { redis, apiKey } = fixture
  const env = { ...fixture.bffEnv, NXCLOUD_BASE_URL: fixture.simulator.url }
  const redisEnv = { ...env, REDIS_URL: redis.url, CACHE_KEY_PREFIX: redis.keyPrefix }
  // What each TWIN_ROWS row's server runs with, to start its second process alike.
  const envOfRow = new Map<HitRowName, Record<string, string>>([[HitRows.apiKey, env], [HitRows.redis, redisEnv]])
  const [inProcess, unlogged, shared] = await Promise.all([
    startBff(env),
    startBff({ ...env, LOG_LEVEL: 'warn' }),
    redis.counter === undefined ? undefined : startBff(redisEnv),
  ])
  const hit = await warmCache(inProcess, apiKey)
  const answer = captured ?? hit
  if (captured === undefined) {
    progress(`the baselines serve the service's hit: ${Buffer.byteLength(answer.body)} bytes of body, header fields ` +
      Object.keys(answer.headers).join(', '))
  }
  await warmCache(inProcess, fixture.bearer)
  await warmCache(unlogged, apiKey)
  const ready = { path: HIT_PATH, headers: apiKey }
  const [bare, conventional, probe] = await Promise.all([
    startBaseline(Baselines.bare, answer, {}, ready),
    startBaseline(Baselines.conventional, answer, { BENCH_API_KEY: DEMO_API_KEY_ALL_TENANTS }, ready),
    startBaseline(Baselines.probe, answer, { BENCH_API_KEY: DEMO_API_KEY_ALL_TENANTS }, ready),
  ])
  const targets: HitTarget[] = [
    { name: HitRows.bare, server: bare, headers: apiKey },
    { name: HitRows.conventional, server: conventional, headers: apiKey },
    { name: HitRows.probe, server: probe, headers: apiKey },
    { name: HitRows.apiKey, server: inProcess, headers: apiKey },
    { name: HitRows.noAccessLine, server: unlogged, headers: apiKey },
    { name: HitRows.jwt, server: inProcess, headers: fixture.bearer },
  ]
  if (shared !== undefined) {
    await warmCache(shared, apiKey)
    targets.push({ name: HitRows.redis, server: shared, headers: apiKey })
  }
  if (withTwins) {
    const startTwin = async (name: HitRowName): Promise<HitTarget> => {
      const twinEnv = envOfRow.get(name)
      if (twinEnv === undefined) throw new Error(`no environment to start a second ${name} process with`)
      const server = await startBff(twinEnv)
      await warmCache(server, apiKey)
      return { name, server, headers: apiKey, twin: true }
    }
    const rows = TWIN_ROWS.filter((name) => targets.some((target) => target.name === name))
    targets.push(...await Promise.all(rows.map(startTwin)))
  }
  for (const baseline of targets.filter((target) => !SERVICE_ROWS.includes(target.name))) await checkSameAnswer(baseline, answer)
  return { targets, answer }
}

/** Fills the cache for HIT_PATH and checks that the next request is a hit; returns that hit's answer. */
async function warmCache (server: BenchServer, headers: Record<string, string>): Promise<HitAnswer> {
  const first = await request(server.origin + HIT_PATH, { headers })
  await first.body.dump()
  const hit = await askForAnswer(server, headers)
  if (first.statusCode !== 200 || hit.headers['x-cache'] !== 'HIT') {
    throw new Error(`the cache did not warm at ${server.origin}: ${first.statusCode}, then X-Cache ${String(hit.headers['x-cache'])}`)
  }
  return hit
}

/** The body and header fields (in the order sent, but those Node writes itself) of one answer. */
async function askForAnswer (server: BenchServer, headers: Record<string, string>): Promise<HitAnswer> {
  const response = await request(server.origin + HIT_PATH, { headers })
  const fields = Object.entries(response.headers)
    .filter(([name]) => !WRITTEN_BY_NODE.has(name))
    .map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)])
  return { body: await response.body.text(), headers: Object.fromEntries(fields) }
}

// A baseline that wrote other bytes than the service would measure something else than the service's answer.
async function checkSameAnswer (baseline: HitTarget, expected: HitAnswer): Promise<void> {
  const served = await askForAnswer(baseline.server, baseline.headers)
  const differing = [...new Set([...Object.keys(expected.headers), ...Object.keys(served.headers)])]
    .filter((name) => expected.headers[name] !== served.headers[name])
  if (served.body !== expected.body || differing.length > 0) {
    throw new Error(`the ${baseline.name} does not serve the service's hit: ` +
      `${served.body === expected.body ? 'same body' : 'another body'}, header fields differing: ${differing.join(', ') || 'none'}`)
  }
}

async function measureSaturation (
  options: BenchOptions,
  target: HitTarget,
  round: number,
  redis: BenchRedis | undefined,
  redisTally: RedisTally
): Promise<SaturationRound> {
  const counter = redis?.counter
  const idleFrom = await counter?.read()
  if (counter !== undefined) await sleep(options.redisIdleSeconds * 1000)
  const runFrom = await counter?.read()
  const redisCpuBefore = redis?.server === undefined ? 0 : cpuMicrosOf(redis.server)
  const cpuBefore = cpuMicrosOf(target.server)
  const stealFrom = readCpuTimes(serverCpu())
  const result = await saturate(target.server.origin + HIT_PATH, target.headers, CONNECTIONS, options.durationSeconds)
  const cpuMicros = cpuMicrosOf(target.server) - cpuBefore
  const hostSteal = stealShareBetween(stealFrom, readCpuTimes(serverCpu()))
  if (counter !== undefined && idleFrom !== undefined && runFrom !== undefined) {
    redisTally.serverCpuMicros += redis?.server === undefined ? 0 : cpuMicrosOf(redis.server) - redisCpuBefore
    redisTally.commands += counter.between(runFrom, await counter.read())
    redisTally.idleCommands += counter.between(idleFrom, runFrom)
    redisTally.idleSeconds += options.redisIdleSeconds
    redisTally.hits += result.requests
    redisTally.runSeconds += options.durationSeconds
  }
  const measured = { target: target.name, round, processes: 1, ...result, cpuMicrosPerRequest: cpuMicros / Math.max(1, result.requests), hostSteal }
  progress(`round ${round}, ${target.name}${target.twin === true ? ' (its second process)' : ''} at saturation: ${Math.round(measured.requestsPerSecond)} req/s, ` +
    `${measured.cpuMicrosPerRequest.toFixed(1)} CPU µs/req, host steal ${stealPercent(hostSteal)} % of its core`)
  return measured
}

async function measureAtFixedRate (options: BenchOptions, targets: HitTarget[], ratePerSecond: number, round: number): Promise<FixedRateRound[]> {
  const atFixedRate = (target: HitTarget, seconds: number) =>
    offerFixedRateFromC(target.server.origin, { ratePerSecond, seconds, connections: CONNECTIONS, path: HIT_PATH, headers: target.headers })
  // Fresh servers warm up (their JIT) at the rate they are measured at.
  for (const target of targets) await atFixedRate(target, options.warmupSeconds)
  const fixedRate: FixedRateRound[] = []
  for (const target of targets) {
    // Every core: a latency is timed by the generator, so a stall of its core counts as much as one of the server's.
    const stealFrom = readCpuTimes(undefined)
    const cpuBefore = cpuMicrosOf(target.server)
    const startedAt = performance.now()
    const result = await atFixedRate(target, options.durationSeconds)
    // Over the whole run: a server past its capacity answers the last requests after the rate's seconds.
    const coreBusy = (cpuMicrosOf(target.server) - cpuBefore) / ((performance.now() - startedAt) * MICROS_PER_MILLI)
    const hostSteal = stealShareBetween(stealFrom, readCpuTimes(undefined))
    fixedRate.push({ target: target.name, round, ...result, coreBusy, hostSteal })
    progress(`round ${round}, ${target.name} at ${ratePerSecond} req/s: p50 ${result.p50Ms.toFixed(2)} ms, ` +
      `p99 ${result.p99Ms.toFixed(2)} ms (requests sent ${result.dispatchLagP99Ms.toFixed(2)} ms late at p99), core busy ${coreBusy.toFixed(2)}, ` +
      `host steal ${stealPercent(hostSteal)} % of every core`)
  }
  return fixedRate
}

/**
 * One run per row and round: a row's processes (TWIN_ROWS) together, their requests and CPU time summed,
 * their requests/s and host steal averaged.
 */
export function byRowAndRound (runs: SaturationRound[]): SaturationRound[] {
  const groups = new Map<string, SaturationRound[]>()
  for (const run of runs) {
    const key = `${run.round} ${run.target}`
    groups.set(key, [...groups.get(key) ?? [], run])
  }
  return [...groups.values()].map((group) => {
    const sum = (value: (run: SaturationRound) => number) => group.reduce((total, run) => total + value(run), 0)
    const requests = sum((run) => run.requests)
    return {
      ...group[0]!,
      processes: sum((run) => run.processes),
      requests,
      requestsPerSecond: sum((run) => run.requestsPerSecond) / group.length,
      non2xx: sum((run) => run.non2xx),
      errors: sum((run) => run.errors),
      cpuMicrosPerRequest: sum((run) => run.cpuMicrosPerRequest * run.requests) / Math.max(1, requests),
      hostSteal: sum((run) => run.hostSteal) / group.length,
    }
  })
}

function hitRows (names: HitRowName[], saturation: SaturationRound[], fixedRate: FixedRateRound[]): HitRow[] {
  const cpuByRound = (name: HitRowName) => saturation.filter((run) => run.target === name).map((run) => run.cpuMicrosPerRequest)
  const bareByRound = cpuByRound(HitRows.bare)
  return names.map((name) => {
    const saturated = saturation.filter((run) => run.target === name)
    const fixed = fixedRate.filter((run) => run.target === name)
    const all = [...saturated, ...fixed]
    const byRound = cpuByRound(name)
    return {
      target: name,
      cpuMicrosPerRequest: median(byRound),
      cpuMicrosPerRequestByRound: byRound,
      efficiency: 1 / cpuRatioByRound(byRound, bareByRound),
      requestsPerSecond: median(saturated.map((run) => run.requestsPerSecond)),
      coreBusy: median(saturated.map((run) => run.cpuMicrosPerRequest * run.requestsPerSecond / MICROS_PER_SECOND)),
      coreBusyAtFixedRate: median(fixed.map((run) => run.coreBusy)),
      hostStealAtSaturation: median(saturated.map((run) => run.hostSteal)),
      hostStealAtFixedRate: median(fixed.map((run) => run.hostSteal)),
      p50Ms: median(fixed.map((run) => run.p50Ms)),
      p99Ms: median(fixed.map((run) => run.p99Ms)),
      non2xx: all.reduce((sum, run) => sum + run.non2xx, 0),
      errors: all.reduce((sum, run) => sum + run.errors, 0),
    }
  })
}
