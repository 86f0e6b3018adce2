/**
 * `npm run soak [-- --minutes N --rate R]`: three instances of the compiled service (`dist/server.js`,
 * separate processes) on a Sentinel group of the soak's own, under mixed traffic for N minutes (10 by
 * default) at R requests a second (200): hits, misses, unknown tenants, refreshes, 401, 403 and 429;
 * a rolling restart of every instance at 40 % of the run and a Sentinel failover at 65 %. It reports
 * the answers by kind, status and X-Cache, the unexpected ones, NxCloud calls against tenants, p50 and
 * p99 per minute, and each instance's resident memory after warm-up and at the end. Not part of
 * `npm test`: figures depend on the machine, so they are printed, never asserted.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Scopes } from '../../src/auth/caller.js'
import { issueApiKey } from '../../src/auth/issue-api-key.js'
import { rssBytesOf, startBff, stopServer, type BenchServer } from '../bench/bench-processes.js'
import { scrape, valueOf } from '../metrics/prometheus-text.js'
import { freePort } from '../server/server-process.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, generatedTenantAppkey } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { startTopology } from '../support/redis-topologies.js'
import { startSteadyLoad, summarise, type LoadRequest, type LoadSample } from '../support/steady-load.js'

const INSTANCES = 3
const WARM_TENANTS = 20
// Misses come from a pool this large, each asked again once the TTL has made it stale or gone.
const MISS_POOL = 2_000
const UNKNOWN_TENANTS = 50
const UPSTREAM_LATENCY_MS = 20
const CACHE_TTL_SECONDS = 60
const CACHE_NEGATIVE_TTL_SECONDS = 30
const LIMITED_KEY_MAX = 10
const RESTART_AT = 0.4
const FAILOVER_AT = 0.65
const MINUTE_MS = 60_000
// Memory is sampled this often: the resident set swings by a fifth with the collector's cycles, so it is
// judged by the median of a minute's samples, not by one.
const MEMORY_SAMPLE_MS = 10_000
// An instance's memory is judged from its first sample this long after it started: long enough for the
// traffic to have gone once round the miss pool (every 100 s) and through a TTL and a stale window.
const WARM_UP_MS = 150_000
const RSS_TOLERANCE = 0.1
const MIB = 1024 * 1024

const { values: args } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, rate: { type: 'string', default: '200' } } })
const minutes = Number(args.minutes)
const ratePerSecond = Number(args.rate)
if (!(minutes > 0) || !(ratePerSecond > 0)) throw new Error('--minutes and --rate must be positive numbers')
const durationMs = minutes * MINUTE_MS

// What a kind of request may be answered with; anything else is unexpected.
const EXPECTED: Record<string, number[]> = {
  hit: [200], miss: [200], unknown: [404], refresh: [200], unauthenticated: [401], forbidden: [403], limited: [200, 429],
}

const teardowns: Array<() => unknown> = []
const owner = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
const startedAt = performance.now()
const log = (message: string): void => { process.stdout.write(`[${((performance.now() - startedAt) / 1000).toFixed(0).padStart(4)} s] ${message}\n`) }

interface MemorySample {
  /** Ms since the load started. */
  atMs: number
  pid: number | undefined
  rssBytes: number
  heapUsedBytes: number | undefined
}

interface Slot {
  server: BenchServer
  metricsPort: number
  startedAtMs: number
  /** Memory of the process now in the slot. */
  memory: MemorySample[]
  /** Every sample of every process the slot had, for the report. */
  history: MemorySample[]
  restarts: number
}

try {
  await soak()
} finally {
  for (const teardown of teardowns.reverse()) await teardown()
}

async function soak (): Promise<void> {
  const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET, latencyMs: UPSTREAM_LATENCY_MS })
  owner.teardown(() => simulator.close())
  log('starting a Sentinel group (master, replica, three Sentinels)')
  const topology = await startTopology(owner, 'sentinel')
  const keys = writeKeys()
  const env = {
    NXCLOUD_BASE_URL: simulator.url,
    NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
    NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
    NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
    API_KEYS_FILE: keys.file,
    ...topology.env,
    CACHE_KEY_PREFIX: `nxcloud-bff-soak:${randomUUID()}:`,
    CACHE_TTL_SECONDS: String(CACHE_TTL_SECONDS),
    CACHE_NEGATIVE_TTL_SECONDS: String(CACHE_NEGATIVE_TTL_SECONDS),
    RATE_LIMIT_MAX: '1000000000',
    SHUTDOWN_DRAIN_DELAY_MS: '1000',
    LOG_LEVEL: 'warn',
  }
  const slots: Slot[] = []
  for (let index = 0; index < INSTANCES; index++) {
    const metricsPort = await freePort()
    slots.push({ server: await startBff({ ...env, METRICS_PORT: String(metricsPort) }), metricsPort, startedAtMs: 0, memory: [], history: [], restarts: 0 })
  }
  owner.teardown(() => Promise.all(slots.map((slot) => stopServer(slot.server))))
  log(`${INSTANCES} instances up: ${slots.map((slot) => slot.server.origin).join(', ')}`)

  const routed = new Set(slots)
  const load = startSteadyLoad({
    origins: () => [...routed].map((slot) => slot.server.origin),
    next: (index) => requestOf(index, keys),
    ratePerSecond,
  })
  owner.teardown(() => load.stop())
  const events: string[] = []
  const callsPerMinute: number[] = []
  let callsAtMinute = simulator.calls
  const sampleMemory = async (): Promise<void> => {
    for (const slot of slots) {
      const sample = { atMs: load.now(), pid: slot.server.process.pid, rssBytes: rssBytesOf(slot.server), heapUsedBytes: await heapUsedOf(slot) }
      slot.memory.push(sample)
      slot.history.push(sample)
    }
  }
  await sampleMemory()
  const memorySampler = setInterval(() => { sampleMemory().catch(() => {}) }, MEMORY_SAMPLE_MS)
  const sampler = setInterval(() => {
    callsPerMinute.push(simulator.calls - callsAtMinute)
    callsAtMinute = simulator.calls
    log(`minute ${callsPerMinute.length}: ${load.samples.length} answers so far, ${simulator.calls} NxCloud calls`)
  }, MINUTE_MS)
  owner.teardown(() => {
    clearInterval(sampler)
    clearInterval(memorySampler)
  })

  await sleep(durationMs * RESTART_AT)
  for (const [index, slot] of slots.entries()) {
    // As a load balancer would: no new request once the instance is told to stop (its readiness fails at once).
    routed.delete(slot)
    await stopServer(slot.server)
    slot.server = await startBff({ ...env, METRICS_PORT: String(slot.metricsPort) })
    slot.startedAtMs = load.now()
    slot.memory = []
    slot.restarts++
    routed.add(slot)
    events.push(`${(load.now() / 1000).toFixed(0)} s: instance ${index + 1} restarted`)
    log(`instance ${index + 1} restarted`)
  }
  await sleep(Math.max(0, durationMs * FAILOVER_AT - load.now()))
  const oldMaster = await topology.masterPort()
  const newMaster = await topology.failover()
  events.push(`${(load.now() / 1000).toFixed(0)} s: Sentinel failover, master ${oldMaster} → ${newMaster}`)
  log(`failover: master ${oldMaster} → ${newMaster}`)
  await sleep(Math.max(0, durationMs - load.now()))
  clearInterval(sampler)
  clearInterval(memorySampler)
  await load.stop()
  await sampleMemory()
  callsPerMinute.push(simulator.calls - callsAtMinute)
  process.stdout.write(`\n${report(load.samples, slots, events, callsPerMinute, simulator.calls)}\n`)
}

async function heapUsedOf (slot: Slot): Promise<number | undefined> {
  try {
    return valueOf((await scrape(`http://127.0.0.1:${slot.metricsPort}`)).samples, 'nodejs_heap_size_used_bytes')
  } catch {
    return undefined
  }
}

interface SoakKeys {
  file: string
  reader: string
  refresher: string
  narrow: string
  limited: string
  unknown: string
}

function writeKeys (): SoakKeys {
  const reader = issueApiKey('soak-reader', '*', [Scopes.phonesRead])
  const refresher = issueApiKey('soak-refresher', '*', [Scopes.phonesRead, Scopes.cacheRefresh])
  const narrow = issueApiKey('soak-narrow', ['demo-shop'], [Scopes.phonesRead])
  const limited = issueApiKey('soak-limited', '*', [Scopes.phonesRead], LIMITED_KEY_MAX)
  const dir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-soak-'))
  owner.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'api-keys.json')
  writeFileSync(file, JSON.stringify([reader.entry, refresher.entry, narrow.entry, limited.entry]))
  return { file, reader: reader.key, refresher: refresher.key, narrow: narrow.key, limited: limited.key, unknown: issueApiKey('soak-unknown', '*', [Scopes.phonesRead]).key }
}

// The mix, by the request's place in each hundred.
function requestOf (index: number, keys: SoakKeys): LoadRequest {
  const share = index % 100
  const warm = generatedTenantAppkey(index % WARM_TENANTS)
  const path = (appkey: string) => `/tenants/${appkey}/phones`
  const as = (key: string) => ({ 'x-api-key': key })
  if (share < 65) return { kind: 'hit', path: path(warm), headers: as(keys.reader) }
  if (share < 75) return { kind: 'miss', path: path(generatedTenantAppkey(WARM_TENANTS + (Math.floor(index / 100) * 10 + share - 65) % MISS_POOL)), headers: as(keys.reader) }
  if (share < 80) return { kind: 'unknown', path: path(`no-such-app-${Math.floor(index / 100) % UNKNOWN_TENANTS}`), headers: as(keys.reader) }
  if (share < 82) return { kind: 'refresh', method: 'POST', path: `${path(warm)}/refresh`, headers: as(keys.refresher) }
  if (share < 87) return { kind: 'unauthenticated', path: path(warm), headers: as(keys.unknown) }
  if (share < 92) return { kind: 'forbidden', path: path(warm), headers: as(keys.narrow) }
  return { kind: 'limited', path: path(warm), headers: as(keys.limited) }
}

function report (samples: LoadSample[], slots: Slot[], events: string[], callsPerMinute: number[], calls: number): string {
  const lines: string[] = []
  const unexpected = samples.filter((sample) => !(EXPECTED[sample.kind] ?? []).includes(sample.status))
  lines.push(`Soak: ${minutes} min, ${ratePerSecond} requests/s over ${INSTANCES} instances on a Sentinel group, NxCloud answering in ${UPSTREAM_LATENCY_MS} ms, CACHE_TTL_SECONDS=${CACHE_TTL_SECONDS}`)
  lines.push(...events.map((event) => `- ${event}`))
  lines.push('', `Answers: ${samples.length}; unexpected: ${unexpected.length}${unexpected.length > 0 ? ` (${describe(unexpected)})` : ''}`, '')
  lines.push('| kind | expected | answers (status, X-Cache) |', '|---|---|---|')
  for (const [kind, expected] of Object.entries(EXPECTED)) {
    lines.push(`| ${kind} | ${expected.join(' or ')} | ${describe(samples.filter((sample) => sample.kind === kind))} |`)
  }
  const refreshes = samples.filter((sample) => sample.kind === 'refresh').length
  const periods = freshnessPeriods(samples)
  lines.push('', `NxCloud calls: ${calls}. The most a cache coalescing perfectly across instances would make: one per tenant and ` +
    `freshness period in which it was asked (${periods.tenants} tenants, ${periods.count} periods: TTL ${CACHE_TTL_SECONDS} s, ` +
    `${CACHE_NEGATIVE_TTL_SECONDS} s for an unknown appkey) plus one per refresh (${refreshes}): ${periods.count + refreshes}. ` +
    `Per minute: ${callsPerMinute.join(', ')}.`)
  lines.push('', '| minute | answers | p50 ms | p99 ms | p99 of hits ms | unexpected |', '|---|---|---|---|---|---|')
  for (let minute = 0; minute * MINUTE_MS < durationMs; minute++) {
    const from = minute * MINUTE_MS
    const summary = summarise(samples, from, from + MINUTE_MS)
    const hits = summarise(samples.filter((sample) => sample.kind === 'hit'), from, from + MINUTE_MS)
    const wrong = unexpected.filter((sample) => sample.sentAtMs >= from && sample.sentAtMs < from + MINUTE_MS).length
    lines.push(`| ${minute + 1} | ${summary.requests} | ${summary.p50Ms.toFixed(1)} | ${summary.p99Ms.toFixed(1)} | ${hits.p99Ms.toFixed(1)} | ${wrong} |`)
  }
  lines.push('', 'Resident memory (and V8 heap used), MiB, per instance: medians of each minute\'s samples (one every ' +
    `${MEMORY_SAMPLE_MS / 1000} s); * marks a minute in which a new process took the instance's place:`, '',
    `| minute | ${slots.map((_, index) => `instance ${index + 1}`).join(' | ')} |`, `|---|${slots.map(() => '---|').join('')}`)
  for (let minute = 0; minute * MINUTE_MS < durationMs; minute++) {
    const cells = slots.map((slot) => {
      const within = slot.history.filter(({ atMs }) => atMs >= minute * MINUTE_MS && atMs < (minute + 1) * MINUTE_MS)
      if (within.length === 0) return '-'
      const fresh = new Set(within.map(({ pid }) => pid)).size > 1 ? '* ' : ''
      return `${fresh}${mib(median(within.map(({ rssBytes }) => rssBytes)))} (${mib(median(within.map(({ heapUsedBytes }) => heapUsedBytes ?? 0)))})`
    })
    lines.push(`| ${minute + 1} | ${cells.join(' | ')} |`)
  }
  lines.push('', `Each instance's process at the end, its resident memory after warm-up (median of the minute from ${WARM_UP_MS / 1000} s ` +
    'after it started) and in the last minute:', '',
  '| instance | restarts | RSS after warm-up (MiB) | RSS in the last minute (MiB) | change |', '|---|---|---|---|---|')
  for (const [index, slot] of slots.entries()) {
    const warm = rssMedian(slot.memory, slot.startedAtMs + WARM_UP_MS, slot.startedAtMs + WARM_UP_MS + MINUTE_MS)
    const last = rssMedian(slot.memory, durationMs - MINUTE_MS, Number.POSITIVE_INFINITY)
    const judged = warm !== undefined && last !== undefined && slot.startedAtMs + WARM_UP_MS + MINUTE_MS <= durationMs - MINUTE_MS
    const change = judged ? (last - warm) / warm : undefined
    const verdict = change === undefined ? 'run too short to judge' : `${(change * 100).toFixed(1)} % ${Math.abs(change) <= RSS_TOLERANCE ? '(within 10 %)' : '(beyond 10 %)'}`
    lines.push(`| ${index + 1} | ${slot.restarts} | ${warm === undefined ? '-' : mib(warm)} | ${last === undefined ? '-' : mib(last)} | ${verdict} |`)
  }
  return lines.join('\n')
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

function rssMedian (samples: MemorySample[], fromMs: number, toMs: number): number | undefined {
  const within = samples.filter(({ atMs }) => atMs >= fromMs && atMs < toMs)
  return within.length === 0 ? undefined : median(within.map(({ rssBytes }) => rssBytes))
}

function mib (bytes: number): string {
  return (bytes / MIB).toFixed(1)
}

/**
 * Tenants asked, and the freshness periods in which they were: a period opens with an ask past the end
 * of the one before, and lasts the TTL (of an unknown appkey, the negative TTL).
 */
function freshnessPeriods (samples: LoadSample[]): { tenants: number, count: number } {
  const asks = new Map<string, number[]>()
  for (const sample of samples) {
    if (sample.kind !== 'hit' && sample.kind !== 'miss' && sample.kind !== 'unknown') continue
    const times = asks.get(sample.path)
    if (times === undefined) asks.set(sample.path, [sample.sentAtMs])
    else times.push(sample.sentAtMs)
  }
  let count = 0
  for (const [path, times] of asks) {
    const lifetimeMs = (path.includes('/no-such-app-') ? CACHE_NEGATIVE_TTL_SECONDS : CACHE_TTL_SECONDS) * 1000
    let periodEndsAtMs = Number.NEGATIVE_INFINITY
    for (const atMs of times.sort((a, b) => a - b)) {
      if (atMs < periodEndsAtMs) continue
      count++
      periodEndsAtMs = atMs + lifetimeMs
    }
  }
  return { tenants: asks.size, count }
}

// "200 HIT: 120, 200 MISS: 3, 404: 7"
function describe (samples: LoadSample[]): string {
  const counts = new Map<string, number>()
  for (const { status, cache } of samples) {
    const key = `${status === 0 ? 'no answer' : status}${cache === undefined ? '' : ` ${cache}`}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => `${key}: ${count}`).join(', ')
}
