/**
 * What every row of the benchmark shares: the NxCloud simulator (at once, and at a fixed latency), the dev
 * identity provider and an API key file, the environment every BFF starts with, the Redis, and the
 * progress lines.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { DEMO_API_KEY_ALL_TENANTS, DEMO_API_KEY_ENTRIES } from '../dev/demo-credentials.js'
import { DEV_AUDIENCE, DEV_ISSUER, mintDevToken, startDevJwksServer } from '../dev/dev-identity-provider.js'
import { deleteKeysWithPrefix, TEST_REDIS_URL } from '../helper.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator, type NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { startBff, startPrivateRedis, stopServer, type BenchServer } from './bench-processes.js'
import { MISS_UPSTREAM_LATENCY_MS } from './bench-verdicts.js'
import { connectRedisCommandCounter, type RedisCommandCounter } from './redis-commands.js'

/** Sockets the load generators open to a server under load. */
export const CONNECTIONS = 50
const TOKEN_TTL_SECONDS = 3600

export interface Fixture {
  simulator: NxCloudSimulator
  /** The same simulator, answering after MISS_UPSTREAM_LATENCY_MS: the miss row's upstream. */
  distantSimulator: NxCloudSimulator
  /** What every BFF reads, but for its upstream. */
  bffEnv: Record<string, string>
  apiKey: Record<string, string>
  bearer: Record<string, string>
  redis: BenchRedis
  close (): Promise<void>
}

export interface BenchRedis {
  url: string
  /** Set when the bench started this Redis itself. */
  server: BenchServer | undefined
  /** Undefined when no Redis answers: the Redis row is then not measured. */
  counter: RedisCommandCounter | undefined
  keyPrefix: string
  description: string
}

export async function startFixture (): Promise<Fixture> {
  const credentials = { accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET }
  const simulator = await startNxCloudSimulator(credentials)
  const distantSimulator = await startNxCloudSimulator({ ...credentials, latencyMs: MISS_UPSTREAM_LATENCY_MS })
  const jwks = await startDevJwksServer(0)
  const keysDir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-bench-'))
  const apiKeysFile = join(keysDir, 'api-keys.json')
  writeFileSync(apiKeysFile, JSON.stringify(DEMO_API_KEY_ENTRIES))
  const token = await mintDevToken({ sub: 'bench', appkeys: '*', scope: 'phones:read', ttlSeconds: TOKEN_TTL_SECONDS })
  const redis = await chooseRedis()
  return {
    simulator,
    distantSimulator,
    bffEnv: {
      NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
      NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
      NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
      API_KEYS_FILE: apiKeysFile,
      JWT_JWKS_URL: jwks.url,
      JWT_ISSUER: DEV_ISSUER,
      JWT_AUDIENCE: DEV_AUDIENCE,
      // One load generator is one caller: the limiter still runs on every request, but must not refuse it.
      RATE_LIMIT_MAX: '1000000000',
      // No load balancer routes here: stopping need not wait for one to notice.
      SHUTDOWN_DRAIN_DELAY_MS: '0',
    },
    apiKey: { 'x-api-key': DEMO_API_KEY_ALL_TENANTS },
    bearer: { authorization: `Bearer ${token}` },
    redis,
    close: async () => {
      redis.counter?.close()
      if (redis.server === undefined) await deleteKeysWithPrefix(redis.url, redis.keyPrefix)
      await Promise.all([simulator.close(), distantSimulator.close(), jwks.close(), stopServer(redis.server)])
      rmSync(keysDir, { recursive: true, force: true })
    },
  }
}

/** The compiled BFF in Redis mode with API keys on (issue 15's measurements), the rest as `env` says or at its defaults. */
export async function startRedisBff (fixture: Fixture, env: Record<string, string> = {}): Promise<BenchServer> {
  return await startBff({
    ...fixture.bffEnv,
    NXCLOUD_BASE_URL: fixture.simulator.url,
    REDIS_URL: fixture.redis.url,
    CACHE_KEY_PREFIX: fixture.redis.keyPrefix,
    ...env,
  })
}

/** BENCH_REDIS_URL when set; else a redis-server of the bench's own, when there is one; else the tests' shared Redis. */
async function chooseRedis (): Promise<BenchRedis> {
  const given = process.env['BENCH_REDIS_URL']
  const server = given === undefined ? await startPrivateRedis() : undefined
  const url = given ?? server?.origin ?? TEST_REDIS_URL
  return {
    url,
    server,
    counter: await connectRedisCommandCounter(url),
    keyPrefix: `nxcloud-bff-bench:${randomUUID()}:`,
    description: server === undefined ? `the Redis at ${url}, shared with whatever else uses it` : `the bench's own redis-server at ${url}`,
  }
}

const startedAt = performance.now()

/** A line on the way, stamped with the seconds since the bench started. */
export function progress (message: string): void {
  process.stdout.write(`[${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${message}\n`)
}
