/**
 * `npm run build && npx tsx test/bench/cold-start.ts`: issue 15's figures. 500 requests at once, each for
 * a tenant the BFF has never seen, against the compiled service (Redis mode, API keys on), in a process of
 * its own, started afresh for each run:
 * - an upstream answering in 20 ms: served, shed, answer times;
 * - one answering in 2 s, with the 5 s budget: served, shed, how soon the shed calls were answered; once
 *   before NxCloud has answered this process (cold), once after one call (warm);
 * - the memory guard: the process's heap and resident memory with NXCLOUD_MAX_QUEUE calls waiting.
 * Figures are printed, never asserted: they depend on the machine.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'
import { scrape, valueOf } from '../metrics/prometheus-text.js'
import { freePort } from '../server/server-process.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, generatedTenantAppkey } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator, type NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { progress, startFixture, type Fixture } from './bench-fixture.js'
import { rssBytesOf, startBff, stopServer, type BenchServer } from './bench-processes.js'
import { percentile } from './http-load.js'

const COLD_TENANTS = 500
const FAST_UPSTREAM_MS = 20
const SLOW_UPSTREAM_MS = 2_000
const BUDGET_MS = 5_000
// The default NXCLOUD_MAX_QUEUE, and calls enough to fill it behind the default 32 in flight.
const MEMORY_GUARD = 2_000
const MEMORY_CALLS = MEMORY_GUARD + 32
// Long enough that no call ends while the memory is read: every one of them waits.
const MEMORY_UPSTREAM_MS = 30_000
const MEMORY_BUDGET_MS = 60_000
const MIB = 1024 * 1024
const QUEUE_POLL_MS = 100

interface Burst {
  served: number[]
  shed: number[]
  /** Answers other than 200 and 503, by status (504 would be a call that waited out its budget). */
  other: Map<number | 'error', number>
  upstreamCalls: number
}

const fixture = await startFixture()
let nextTenant = 1
try {
  await fastUpstream()
  await slowUpstream('cold', false)
  await slowUpstream('warm', true)
  await memoryGuard()
} finally {
  await fixture.close()
}

async function fastUpstream (): Promise<void> {
  await withUpstream(FAST_UPSTREAM_MS, {}, async (server, upstream) => {
    const burst = await sendBurst(server.origin, upstream, COLD_TENANTS)
    report(`${COLD_TENANTS} cold tenants, upstream ${FAST_UPSTREAM_MS} ms`, burst)
  })
}

async function slowUpstream (label: string, warm: boolean): Promise<void> {
  await withUpstream(SLOW_UPSTREAM_MS, { NXCLOUD_TIMEOUT_MS: String(BUDGET_MS) }, async (server, upstream) => {
    if (warm) await sendBurst(server.origin, upstream, 1)
    const burst = await sendBurst(server.origin, upstream, COLD_TENANTS)
    report(`${COLD_TENANTS} cold tenants, upstream ${SLOW_UPSTREAM_MS} ms, budget ${BUDGET_MS} ms, ${label}`, burst)
  })
}

async function memoryGuard (): Promise<void> {
  const metricsPort = await freePort()
  const env = {
    NXCLOUD_TIMEOUT_MS: String(MEMORY_BUDGET_MS),
    HTTP_CONNECTION_TIMEOUT_MS: String(MEMORY_BUDGET_MS + 10_000),
    METRICS_PORT: String(metricsPort),
    SHUTDOWN_TIMEOUT_MS: '1000',
  }
  await withUpstream(MEMORY_UPSTREAM_MS, env, async (server, upstream) => {
    const metrics = `http://127.0.0.1:${metricsPort}`
    const before = await memoryOf(server, metrics)
    const waiting = sendBurst(server.origin, upstream, MEMORY_CALLS)
    let queued = 0
    while (queued < MEMORY_GUARD) {
      await sleep(QUEUE_POLL_MS)
      queued = valueOf((await scrape(metrics)).samples, 'nxcloud_bff_upstream_calls_queued') ?? 0
    }
    const during = await memoryOf(server, metrics)
    const perCallKiB = (bytes: number) => (bytes / MEMORY_GUARD / 1024).toFixed(1)
    progress(`${MEMORY_GUARD} calls waiting (NXCLOUD_MAX_QUEUE), 32 in flight: heap +${mib(during.heap - before.heap)} MiB ` +
      `(${perCallKiB(during.heap - before.heap)} KiB a call), resident +${mib(during.rss - before.rss)} MiB ` +
      `(${perCallKiB(during.rss - before.rss)} KiB a call); heap ${mib(during.heap)} MiB, resident ${mib(during.rss)} MiB in all`)
    await stopServer(server)
    await waiting
  })
}

async function withUpstream (latencyMs: number, env: Record<string, string>,
  run: (server: BenchServer, upstream: NxCloudSimulator) => Promise<void>): Promise<void> {
  const upstream = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET, latencyMs })
  const server = await startBff(bffEnv(fixture, upstream, env))
  try {
    await run(server, upstream)
  } finally {
    await stopServer(server)
    await upstream.close()
  }
}

function bffEnv (fixture: Fixture, upstream: NxCloudSimulator, env: Record<string, string>): Record<string, string> {
  return {
    ...fixture.bffEnv,
    NXCLOUD_BASE_URL: upstream.url,
    REDIS_URL: fixture.redis.url,
    CACHE_KEY_PREFIX: fixture.redis.keyPrefix,
    ...env,
  }
}

// Every request at once, each on a socket of its own, timed from its sending.
async function sendBurst (origin: string, upstream: NxCloudSimulator, count: number): Promise<Burst> {
  upstream.resetCalls()
  const pool = new Pool(origin, { connections: count, pipelining: 1 })
  const burst: Burst = { served: [], shed: [], other: new Map(), upstreamCalls: 0 }
  const tenants = Array.from({ length: count }, () => generatedTenantAppkey(nextTenant++))
  try {
    await Promise.all(tenants.map(async (appkey) => {
      const sentAt = performance.now()
      try {
        const response = await pool.request({ method: 'GET', path: `/tenants/${appkey}/phones`, headers: fixture.apiKey })
        await response.body.dump()
        const ms = performance.now() - sentAt
        if (response.statusCode === 200) burst.served.push(ms)
        else if (response.statusCode === 503) burst.shed.push(ms)
        else burst.other.set(response.statusCode, (burst.other.get(response.statusCode) ?? 0) + 1)
      } catch {
        burst.other.set('error', (burst.other.get('error') ?? 0) + 1)
      }
    }))
  } finally {
    await pool.close()
  }
  burst.upstreamCalls = upstream.calls
  return burst
}

function report (label: string, burst: Burst): void {
  const times = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    return values.length === 0 ? '-' : `p50 ${percentile(sorted, 0.5).toFixed(0)} ms, p99 ${percentile(sorted, 0.99).toFixed(0)} ms`
  }
  const other = [...burst.other].map(([status, count]) => `${count} × ${status}`).join(', ') || 'none'
  progress(`${label}: ${burst.served.length} served (${times(burst.served)}), ${burst.shed.length} shed ` +
    `(answered ${times(burst.shed)}), other answers: ${other}; NxCloud calls: ${burst.upstreamCalls}`)
}

async function memoryOf (server: BenchServer, metricsOrigin: string): Promise<{ heap: number, rss: number }> {
  const { samples } = await scrape(metricsOrigin)
  return { heap: valueOf(samples, 'nodejs_heap_size_used_bytes') ?? Number.NaN, rss: rssBytesOf(server) }
}

function mib (bytes: number): string {
  return (bytes / MIB).toFixed(1)
}
