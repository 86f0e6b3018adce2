/**
 * `npm run bench`: the cache-hit path of the compiled BFF, with its production defaults, against a bare
 * Fastify route returning the same payload, loaded alternately in the same run with autocannon.
 *
 * Tunables: BENCH_DURATION_S (10), BENCH_WARMUP_S (3), BENCH_CONNECTIONS (50), BENCH_ROUNDS (2),
 * BENCH_REDIS_URL (unset: the Redis-backed row is measured when redis://127.0.0.1:6379 answers).
 */
import autocannon from 'autocannon'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator } from '../simulator/nxcloud-simulator.js'

const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 10)
const WARMUP_S = Number(process.env['BENCH_WARMUP_S'] ?? 3)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2)
const REDIS_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
const TENANT_PATH = '/tenants/demo-shop/phones'
const TARGET_RATIO = 0.8
const BASELINE = 'baseline (bare Fastify)'
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

interface Target {
  name: string
  url: string
  process: ChildProcess
}

interface Measurement {
  target: string
  round: number
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
}

async function main (): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' })
  const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET })
  const targets: Target[] = []
  try {
    const bff = await startBff('bff (in-process cache, defaults)', simulator.url, {})
    targets.push(bff)
    const payload = await warmCache(bff.url)
    targets.push(await startBaseline(BASELINE, payload, false))
    targets.push(await startBaseline('bare Fastify + its request logging', payload, true))
    if (await redisAnswers(REDIS_URL)) {
      const prefix = `nxcloud-bff-bench:${process.pid}:`
      const withRedis = await startBff('bff (Redis cache)', simulator.url, { REDIS_URL, CACHE_KEY_PREFIX: prefix })
      targets.push(withRedis)
      await warmCache(withRedis.url)
    }
    const measurements: Measurement[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of targets) measurements.push(await measure(target, round))
    }
    report(measurements, targets.map((target) => target.name), simulator.calls)
  } finally {
    await Promise.all(targets.map((target) => stop(target.process)))
    await simulator.close()
  }
}

async function startBff (name: string, simulatorUrl: string, env: Record<string, string>): Promise<Target> {
  const port = await freePort()
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      NXCLOUD_BASE_URL: simulatorUrl,
      NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
      NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
      NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
      // One load generator is one client: the limiter still runs on every request, but must not refuse it.
      RATE_LIMIT_MAX: '1000000000',
      ...env,
    },
  })
  const url = `http://127.0.0.1:${port}`
  await waitForHealth(url)
  return { name, url, process: child }
}

async function startBaseline (name: string, payload: string, logRequests: boolean): Promise<Target> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/bench/bare-fastify.ts'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { PATH: process.env['PATH'] ?? '', PORT: String(port), BENCH_PAYLOAD: payload, BENCH_LOG_REQUESTS: String(logRequests) },
  })
  const url = `http://127.0.0.1:${port}`
  await waitForHealth(url, TENANT_PATH)
  return { name, url, process: child }
}

async function warmCache (url: string): Promise<string> {
  const first = await fetch(url + TENANT_PATH)
  const payload = await first.text()
  const second = await fetch(url + TENANT_PATH)
  await second.arrayBuffer()
  if (first.status !== 200 || second.headers.get('x-cache') !== 'HIT') {
    throw new Error(`cache did not warm at ${url}: ${first.status} ${String(second.headers.get('x-cache'))}`)
  }
  return payload
}

async function measure (target: Target, round: number): Promise<Measurement> {
  const options = { url: target.url + TENANT_PATH, connections: CONNECTIONS, pipelining: 1 }
  await autocannon({ ...options, duration: WARMUP_S })
  const result = await autocannon({ ...options, duration: DURATION_S })
  const measurement = {
    target: target.name,
    round,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  }
  process.stdout.write(`round ${round}: ${target.name}: ${Math.round(measurement.requestsPerSecond)} req/s\n`)
  return measurement
}

function report (measurements: Measurement[], names: string[], upstreamCalls: number): void {
  const best = (name: string) => measurements
    .filter((m) => m.target === name)
    .reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a))
  const baseline = best(BASELINE)
  const rows = names.map((name) => {
    const m = best(name)
    return {
      target: name,
      'req/s': Math.round(m.requestsPerSecond),
      'p50 ms': m.p50Ms,
      'p99 ms': m.p99Ms,
      'vs baseline': `${(100 * m.requestsPerSecond / baseline.requestsPerSecond).toFixed(1)} %`,
      'non-2xx': m.non2xx,
      errors: m.errors,
    }
  })
  process.stdout.write(`\nmachine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`)
  process.stdout.write(`load: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s per run after ${WARMUP_S} s warm-up, best of ${ROUNDS} alternating rounds\n`)
  console.table(rows)
  const bff = best(names[0] ?? '')
  const ratio = bff.requestsPerSecond / baseline.requestsPerSecond
  const verdict = ratio >= TARGET_RATIO ? 'meets' : 'is BELOW'
  process.stdout.write(`cache-hit path at ${(100 * ratio).toFixed(1)} % of the bare baseline: ${verdict} the ${100 * TARGET_RATIO} % target; upstream calls during the run: ${upstreamCalls}\n`)
  if (bff.non2xx > 0 || bff.errors > 0) {
    process.exitCode = 1
    process.stdout.write('the BFF answered non-2xx or failed during the run: the figures are not a cache-hit measurement\n')
  }
}

async function waitForHealth (url: string, path = '/healthz'): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const response = await fetch(url + path)
      await response.arrayBuffer()
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`${url} did not come up`)
}

async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

async function redisAnswers (url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500, retryStrategy: () => null })
  try {
    await redis.connect()
    return (await redis.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await once(child, 'exit')
}

await main()
