/**
 * `npx tsx test/bench/edge-figures.ts`: the figures the tests used to bound and no longer do (a test
 * suite must pass beside a busy machine, and a bound on time fails there for no fault of the code).
 * Measured here, printed, never judged: how soon a peer's change reaches an instance's memory tier,
 * how another client fares while one floods pipelined requests, how soon a buffered log line is
 * written, how soon NxCloud's slowness and an overload are answered, how soon slow clients are cut,
 * and how the memory tier's estimate compares with the heap it takes.
 * `measureEdgeFigures()` returns them, for `npm run bench` to include.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setImmediate } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { FastifyInstance } from 'fastify'
import { request } from 'undici'
import { createMemoryPhoneListStore } from '../../src/cache/memory-phone-list-store.js'
import { storedPhoneList } from '../../src/cache/phone-list-store.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'
import { parseExposition, valueOf } from '../metrics/prometheus-text.js'
import { FLOODED_SERVER_ENV, floodWithUnreadPipelinedRequests } from '../server/pipelining-flood.js'
import { rawExchange } from '../server/raw-http.js'
import { startServerProcess } from '../server/server-process.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { eventually, EVENTUALLY_TIMEOUT_MS } from '../support/eventually.js'
import { logLineWith } from '../support/log-lines.js'
import { percentile } from './http-load.js'

/** Each figure by name, in milliseconds, bytes or a count as its name says. */
export type EdgeFigures = Record<string, Record<string, number>>

const CHANGES_HEARD = 50
const FLUSHES_TIMED = 8
const MEMORY_TIER_ENTRIES = 20_000
const MEMORY_TIER_BODY_CHARACTERS = 700
const LONG_RETENTION_MS = 3_600_000
const REQUEST_TIMEOUT_MS = 1_000
const HEADERS_TIMEOUT_MS = 500
const TRICKLE_INTERVAL_MS = 200
const TRICKLE_CHUNKS = 1_000

/** What buildTestApp and startSimulator need of a tap test: here, a list of cleanups run at the end. */
class Cleanups {
  readonly #steps: Array<() => unknown> = []
  teardown (step: () => unknown): void { this.#steps.push(step) }
  async run (): Promise<void> {
    for (const step of this.#steps.reverse()) await step()
  }
}

async function withCleanups<T> (measure: (cleanups: Cleanups) => Promise<T>): Promise<T> {
  const cleanups = new Cleanups()
  try {
    return await measure(cleanups)
  } finally {
    await cleanups.run()
  }
}

const sortedUp = (values: number[]) => [...values].sort((a, b) => a - b)
const round = (value: number) => Math.round(value * 10) / 10

function spread (valuesMs: number[]): Record<string, number> {
  const sorted = sortedUp(valuesMs)
  return { samples: sorted.length, p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)), maxMs: round(sorted.at(-1) ?? Number.NaN) }
}

async function timed (action: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await action()
  return performance.now() - started
}

/** Two instances sharing Redis: from A's refresh answered to B's first answer with the new list (test/cache/tiered-phone-list-store.test.ts). */
async function measureChangePropagation (): Promise<Record<string, number>> {
  return await withCleanups(async (cleanups) => {
    const simulator = await startSimulator(cleanups)
    const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_MAX: '1000000' })
    const [a, b] = [await buildTestApp(cleanups, config), await buildTestApp(cleanups, config)]
    const url = phonesUrl('demo-shop')
    await a.app.inject(url)
    await b.app.inject(url)
    const delays: number[] = []
    for (let change = 0; change < CHANGES_HEARD; change++) {
      simulator.answerAs('demo-shop', change % 2 === 0 ? 'demo-bank' : undefined)
      const refreshed = (await a.app.inject({ method: 'POST', url: `${url}/refresh` })).body
      const answered = performance.now()
      // Asked again at each turn of the event loop (after its I/O), not every 10 ms as eventually() would.
      while ((await b.app.inject(url)).body !== refreshed) {
        if (performance.now() - answered > EVENTUALLY_TIMEOUT_MS) throw new Error('B never served the refreshed list')
        await setImmediate()
      }
      delays.push(performance.now() - answered)
    }
    return spread(delays)
  })
}

/** test/server/pipelining.test.ts's scenario: how the other client was served while one flooded. */
async function measurePipelining (): Promise<Record<string, number>> {
  return await withCleanups(async (cleanups) => {
    const simulator = await startSimulator(cleanups)
    const { child, origin } = await startServerProcess(cleanups, simulator, FLOODED_SERVER_ENV)
    if (child.pid === undefined) throw new Error('the server has no pid')
    const flood = await floodWithUnreadPipelinedRequests({ origin, pid: child.pid })
    return {
      ...spread(flood.latenciesMs),
      rssGrowthBytes: flood.peakBytes - flood.baselineBytes,
      floodClosedAfterMs: round(flood.closedAfterMs),
    }
  })
}

/** The process's buffered log: from an answer received to its access line on stdout. */
async function measureLogFlush (): Promise<Record<string, number>> {
  return await withCleanups(async (cleanups) => {
    const simulator = await startSimulator(cleanups)
    const server = await startServerProcess(cleanups, simulator, { SHUTDOWN_DRAIN_DELAY_MS: '0' })
    const delays: number[] = []
    for (let flush = 0; flush < FLUSHES_TIMED; flush++) {
      const requestId = `flush-${randomUUID()}`
      const response = await request(`${server.origin}${phonesUrl('demo-shop')}`, { headers: { 'x-request-id': requestId } })
      await response.body.dump()
      const answered = performance.now()
      await eventually(() => logLineWith(server.output, (line) => line.requestId === requestId && line.msg === 'request completed'),
        { what: 'the access line' })
      delays.push(performance.now() - answered)
    }
    server.child.kill('SIGTERM')
    return spread(delays)
  })
}

/** test/nxcloud/upstream-protection.test.ts's scenarios: a 504 within a 300 ms budget, and a call shed by a full bulkhead. */
async function measureUpstreamProtection (): Promise<Record<string, number>> {
  return await withCleanups(async (cleanups) => {
    const simulator = await startSimulator(cleanups)
    const timingOut = await buildTestApp(cleanups, testConfig(simulator, { NXCLOUD_TIMEOUT_MS: '300', NXCLOUD_MAX_ATTEMPTS: '3' }))
    const timeoutAnswerMs = await timed(() => timingOut.app.inject(phonesUrl('sim-slow-5000')))
    const shedAnswerMs = await timeShed(cleanups, simulator)
    return { timeoutBudgetMs: 300, timeoutAnswerMs: round(timeoutAnswerMs), shedAnswerMs: round(shedAnswerMs) }
  })
}

async function timeShed (cleanups: Cleanups, simulator: NxCloudSimulator): Promise<number> {
  const { app } = await buildTestApp(cleanups, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '2', NXCLOUD_MAX_QUEUE: '1', NXCLOUD_TIMEOUT_MS: '10000', RATE_LIMIT_MAX: '1000',
  }))
  const slow = ['sim-slow-1500', 'sim-slow-1501', 'sim-slow-1502'].map((appkey) => app.inject(phonesUrl(appkey)))
  await eventually(async () => {
    const { samples } = parseExposition(await app.metrics.registry.metrics())
    return valueOf(samples, 'nxcloud_bff_upstream_calls_in_flight') === 2 && valueOf(samples, 'nxcloud_bff_upstream_calls_queued') === 1
  }, { what: 'two calls to run and one to queue' })
  const shedAnswerMs = await timed(() => app.inject(phonesUrl('sim-slow-1503')))
  await Promise.all(slow)
  return shedAnswerMs
}

/** test/server/http-edge.test.ts's slow clients: when the server cut them, against its timeouts. */
async function measureSlowClientCuts (): Promise<Record<string, number>> {
  return await withCleanups(async (cleanups) => {
    const simulator = await startSimulator(cleanups)
    const { app } = await buildTestApp(cleanups, testConfig(simulator, {
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    }))
    const port = await listeningPort(app)
    const trickle = (head: string, chunk: (index: number) => string, intervalMs: number) =>
      rawExchange(port, [head, ...Array.from({ length: TRICKLE_CHUNKS }, (_, index) => chunk(index))], { intervalMs })
    const body = await trickle(`POST ${phonesUrl('demo-shop')}/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${TRICKLE_CHUNKS}\r\n\r\n`, () => ' ', TRICKLE_INTERVAL_MS)
    const headers = await trickle('GET /healthz HTTP/1.1\r\nHost: x\r\n', (index) => `X-Slow-${index}: y\r\n`, TRICKLE_INTERVAL_MS / 2)
    const silent = await rawExchange(port, [''])
    return {
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      tricklingBodyCutAfterMs: body.elapsedMs,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      tricklingHeadersCutAfterMs: headers.elapsedMs,
      silentConnectionClosedAfterMs: silent.elapsedMs,
    }
  })
}

async function listeningPort (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

/**
 * The memory tier's estimate against the heap its entries take (src/cache/memory-phone-list-store.ts,
 * ENTRY_OVERHEAD_BYTES): entries as read from Redis, fields sliced out of one stored string. The estimate
 * should not fall short (ratio at most 1) and be close (near 1). Synchronous, so nothing else allocates meanwhile.
 */
function measureMemoryTierHeap (): Record<string, number> {
  setFlagsFromString('--expose-gc')
  const collectGarbage = runInNewContext('gc') as () => void
  // The bytes of a list live outside the JavaScript heap, in array buffers.
  const used = () => { const { heapUsed, arrayBuffers } = process.memoryUsage(); return heapUsed + arrayBuffers }
  collectGarbage()
  const before = used()
  const store = createMemoryPhoneListStore(Number.MAX_SAFE_INTEGER)
  for (let index = 0; index < MEMORY_TIER_ENTRIES; index++) {
    const appkey = `tenant-${String(index).padStart(6, '0')}`
    const body = JSON.stringify({ appkey, phones: 'a'.repeat(MEMORY_TIER_BODY_CHARACTERS - appkey.length - 24) })
    const stored = `L\n${Date.now()}\n"${appkey.padEnd(32, 'x')}"\n${body}`
    const etagStart = stored.indexOf('"')
    const bodyStart = stored.indexOf('\n', etagStart) + 1
    store.keepUntil(appkey, storedPhoneList(stored.slice(bodyStart), stored.slice(etagStart, bodyStart - 1), Date.now()), Date.now() + LONG_RETENTION_MS)
  }
  collectGarbage()
  const heapGrowthBytes = used() - before
  return { entries: store.size, estimatedBytes: store.bytes, heapGrowthBytes, heapOverEstimate: Math.round(heapGrowthBytes / store.bytes * 1000) / 1000 }
}

export async function measureEdgeFigures (): Promise<EdgeFigures> {
  // First, while nothing else has started: the heap measurement wants a quiet heap.
  const memoryTierHeap = measureMemoryTierHeap()
  return {
    memoryTierHeap,
    changePropagation: await measureChangePropagation(),
    pipelining: await measurePipelining(),
    logFlush: await measureLogFlush(),
    upstreamProtection: await measureUpstreamProtection(),
    slowClientCuts: await measureSlowClientCuts(),
  }
}

export function renderEdgeFigures (figures: EdgeFigures): string {
  return Object.entries(figures)
    .map(([name, values]) => `${name}: ${Object.entries(values).map(([key, value]) => `${key} ${value}`).join(', ')}`)
    .join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${renderEdgeFigures(await measureEdgeFigures())}\n`)
}
