import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from './simulator/demo-tenants.js'
import { startNxCloudSimulator, type NxCloudSimulator, type SimulatorOptions } from './simulator/nxcloud-simulator.js'

/** The Redis the tests use; CI starts one at this address when the machine has none. */
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379'

interface Teardown {
  teardown (fn: () => unknown): void
}

/** A key prefix no other test or run shares, so runs against one Redis cannot collide. */
export function uniqueKeyPrefix (): string {
  return `nxcloud-bff-test:${randomUUID()}:`
}

export async function startSimulator (t: Teardown, options: Partial<SimulatorOptions> = {}): Promise<NxCloudSimulator> {
  const simulator = await startNxCloudSimulator({
    accessKey: DEMO_ACCESS_KEY,
    accessSecret: DEMO_ACCESS_SECRET,
    ...options,
  })
  t.teardown(() => simulator.close())
  return simulator
}

/**
 * A valid configuration pointing at the simulator; `env` overrides any variable, as the process would.
 * Caller authentication is off unless a test turns it on (`authEnv`): the tests of caching, errors and
 * limits are about those, and the access tests (test/auth/) prove the authenticated paths.
 */
export function testConfig (simulator: NxCloudSimulator, env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NXCLOUD_BASE_URL: simulator.url,
    NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
    NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
    NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
    CACHE_KEY_PREFIX: uniqueKeyPrefix(),
    LOG_LEVEL: 'info',
    AUTH_DISABLED: 'true',
    // Tests run many apps at once: none may claim the default metrics port.
    METRICS_PORT: '0',
    ...env,
  })
}

export interface TestApp {
  app: FastifyInstance
  config: Config
  /** Every log line the app wrote, as raw JSON text. */
  logs: string[]
}

/** Builds the real app in-process, logs captured in memory, closed (and its Redis keys removed) in teardown. */
export async function buildTestApp (t: Teardown, config: Config): Promise<TestApp> {
  const logs: string[] = []
  const logStream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''))
      done()
    },
  })
  const app = await buildApp(config, { logStream })
  t.teardown(async () => {
    await app.close()
    if (config.REDIS_URL !== undefined) await deleteKeysWithPrefix(config.REDIS_URL, config.CACHE_KEY_PREFIX)
  })
  await app.ready()
  return { app, config, logs }
}

export async function deleteKeysWithPrefix (redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } catch {
    // a test that stopped Redis on purpose leaves nothing to clean
  } finally {
    redis.disconnect()
  }
}

export function phonesUrl (appkey: string): string {
  return `/tenants/${appkey}/phones`
}
