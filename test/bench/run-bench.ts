/**
 * `npm run bench`: the cache-hit path of the compiled BFF, with its production defaults, against a bare
 * Fastify route returning the same payload, loaded alternately in the same run with autocannon.
 *
 * Tunables: BENCH_DURATION_S (10), BENCH_WARMUP_S (3), BENCH_CONNECTIONS (50), BENCH_ROUNDS (3),
 * BENCH_REDIS_URL (unset: the Redis-backed row is measured when redis://127.0.0.1:6379 answers).
 */
import autocannon from 'autocannon'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { cpus, tmpdir, totalmem } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { DEMO_API_KEY_ALL_TENANTS, DEMO_API_KEY_ENTRIES } from '../dev/demo-credentials.js'
import { DEV_AUDIENCE, DEV_ISSUER, mintDevToken, startDevJwksServer } from '../dev/dev-identity-provider.js'

const DURATION_S = Number(process.env['BENCH_DURATION_S'] ?? 10)
const WARMUP_S = Number(process.env['BENCH_WARMUP_S'] ?? 3)
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const REDIS_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
const TENANT_PATH = '/tenants/demo-shop/phones'
const TARGET_EFFICIENCY = 0.8
// Linux's USER_HZ, the unit of utime/stime in /proc/<pid>/stat, is 100 on every mainstream kernel.
const CLOCK_TICKS_PER_SECOND = 100
const BASELINE = 'baseline (bare Fastify)'
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

interface Target {
  name: string
  url: string
  process: ChildProcess
  /** The credentials a caller of this target sends (none for the bare baseline). */
  headers: Record<string, string>
}

interface Measurement {
  target: string
  round: number
  requestsPerSecond: number
  /** CPU time (user + system) the server process spent per answered request. */
  cpuMicrosPerRequest: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
}

async function main (): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'inherit' })
  const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET })
  const jwks = await startDevJwksServer(0)
  const keysDir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-bench-'))
  const apiKeysFile = join(keysDir, 'api-keys.json')
  writeFileSync(apiKeysFile, JSON.stringify(DEMO_API_KEY_ENTRIES))
  const access = { API_KEYS_FILE: apiKeysFile, JWT_JWKS_URL: jwks.url, JWT_ISSUER: DEV_ISSUER, JWT_AUDIENCE: DEV_AUDIENCE }
  const apiKey = { 'x-api-key': DEMO_API_KEY_ALL_TENANTS }
  const bearer = { authorization: `Bearer ${await mintDevToken({ sub: 'bench', appkeys: '*', scope: 'phones:read', ttlSeconds: 3600 })}` }
  const targets: Target[] = []
  try {
    const bff = await startBff('bff hit, API key (defaults)', simulator.url, access, apiKey)
    targets.push(bff)
    const payload = await warmCache(bff)
    targets.push(await startBff('bff hit, repeated JWT (defaults)', simulator.url, access, bearer))
    await warmCache(targets[1]!)
    targets.push(await startBaseline(BASELINE, payload, false))
    targets.push(await startBaseline('bare Fastify + its request logging', payload, true))
    if (await redisAnswers(REDIS_URL)) {
      const prefix = `nxcloud-bff-bench:${process.pid}:`
      const withRedis = await startBff('bff hit, Redis cache, API key', simulator.url, { ...access, REDIS_URL, CACHE_KEY_PREFIX: prefix }, apiKey)
      targets.push(withRedis)
      await warmCache(withRedis)
    }
    const measurements: Measurement[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of targets) measurements.push(await measure(target, round))
    }
    report(measurements, targets.map((target) => target.name), simulator.calls)
  } finally {
    await Promise.all(targets.map((target) => stop(target.process)))
    await simulator.close()
    await jwks.close()
    rmSync(keysDir, { recursive: true, force: true })
  }
}

async function startBff (name: string, simulatorUrl: string, env: Record<string, string>, headers: Record<string, string>): Promise<Target> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(repoRoot, 'dist/server.js')], {
    // Not the project directory: a developer's .env there would change what is measured.
    cwd: tmpdir(),
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
      // No load balancer routes here: stopping need not wait for one to notice.
      SHUTDOWN_DRAIN_DELAY_MS: '0',
      // The metrics listener runs, as in production, on a port of its own per server.
      METRICS_PORT: String(await freePort()),
      ...env,
    },
  })
  const url = `http://127.0.0.1:${port}`
  await waitForHealth(url)
  return { name, url, process: child, headers }
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
  return { name, url, process: child, headers: {} }
}

async function warmCache (target: Target): Promise<string> {
  const first = await fetch(target.url + TENANT_PATH, { headers: target.headers })
  const payload = await first.text()
  const second = await fetch(target.url + TENANT_PATH, { headers: target.headers })
  await second.arrayBuffer()
  if (first.status !== 200 || second.headers.get('x-cache') !== 'HIT') {
    throw new Error(`cache did not warm at ${target.url}: ${first.status} ${String(second.headers.get('x-cache'))}`)
  }
  return payload
}

// utime + stime of a process, from /proc (Linux), in microseconds.
function cpuMicrosOf (child: ChildProcess): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks * (1e6 / CLOCK_TICKS_PER_SECOND)
}

async function measure (target: Target, round: number): Promise<Measurement> {
  const options = { url: target.url + TENANT_PATH, connections: CONNECTIONS, pipelining: 1, headers: target.headers }
  await autocannon({ ...options, duration: WARMUP_S })
  const cpuBefore = cpuMicrosOf(target.process)
  const result = await autocannon({ ...options, duration: DURATION_S })
  const cpuMicros = cpuMicrosOf(target.process) - cpuBefore
  const measurement = {
    target: target.name,
    round,
    requestsPerSecond: result.requests.average,
    cpuMicrosPerRequest: cpuMicros / Math.max(1, result.requests.total),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  }
  process.stdout.write(`round ${round}: ${target.name}: ${Math.round(measurement.requestsPerSecond)} req/s, ${measurement.cpuMicrosPerRequest.toFixed(1)} CPU µs/req\n`)
  return measurement
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

// The machine is shared and noisy: requests/s moves with whatever else runs, CPU time per request much
// less. Efficiency is the bare route's CPU per request over the target's (1.0: costs what Fastify costs).
function report (measurements: Measurement[], names: string[], upstreamCalls: number): void {
  const of = (name: string) => measurements.filter((m) => m.target === name)
  const cpu = (name: string) => median(of(name).map((m) => m.cpuMicrosPerRequest))
  const baselineCpu = cpu(BASELINE)
  const rows = names.map((name) => {
    const runs = of(name)
    return {
      target: name,
      'CPU µs/req': Number(cpu(name).toFixed(1)),
      efficiency: Number((baselineCpu / cpu(name)).toFixed(2)),
      'req/s': Math.round(median(runs.map((m) => m.requestsPerSecond))),
      'p50 ms': median(runs.map((m) => m.p50Ms)),
      'p99 ms': median(runs.map((m) => m.p99Ms)),
      'non-2xx': runs.reduce((sum, m) => sum + m.non2xx, 0),
      errors: runs.reduce((sum, m) => sum + m.errors, 0),
    }
  })
  process.stdout.write(`\nmachine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`)
  process.stdout.write(`load: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s per run after ${WARMUP_S} s warm-up, median of ${ROUNDS} alternating rounds\n`)
  console.table(rows)
  const ratio = baselineCpu / cpu(names[0] ?? '')
  const verdict = ratio >= TARGET_EFFICIENCY ? 'meets' : 'is BELOW'
  process.stdout.write(`cache-hit path (API key) at ${ratio.toFixed(2)} of the bare route's efficiency: ${verdict} the ${TARGET_EFFICIENCY} target; upstream calls during the run: ${upstreamCalls}\n`)
  const jwtVersusKey = cpu(names[1] ?? '') / cpu(names[0] ?? '')
  process.stdout.write(`a repeated JWT costs ${jwtVersusKey.toFixed(2)}x an API key per hit\n`)
  if (rows.some((row) => row.target !== BASELINE && (row['non-2xx'] > 0 || row.errors > 0))) {
    process.exitCode = 1
    process.stdout.write('a target answered non-2xx or failed during the run: the figures are not a cache-hit measurement\n')
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
