import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { LogThrottle } from '../logging/log-throttle.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis connection, or undefined when REDIS_URL is unset. */
    redis: Redis | undefined
  }
}

export interface RedisPluginOptions {
  url: string | undefined
  commandTimeoutMs: number
}

const CONNECT_TIMEOUT_MS = 2_000
const MAX_RECONNECT_DELAY_MS = 2_000
// Start-up waits this long for Redis; past it the service starts degraded and keeps reconnecting.
export const REDIS_STARTUP_WAIT_MS = 2_000
const ERROR_LOG_INTERVAL_MS = 10_000

/**
 * Redis is an accelerator, never a dependency a request waits on: no offline queue (a command while
 * disconnected fails at once), a short command timeout, and endless background reconnection.
 */
export const redisPlugin = fp<RedisPluginOptions>(async function redis (app, options) {
  if (options.url === undefined) {
    app.decorate('redis', undefined)
    return
  }
  const client = new Redis(options.url, {
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
  })
  logConnectionEvents(client, app.log)
  app.decorate('redis', client)
  app.addHook('onClose', async () => { await closeRedis(client) })
  await waitUntilReady(client, REDIS_STARTUP_WAIT_MS)
}, { name: 'redis' })

function logConnectionEvents (client: Redis, log: FastifyBaseLogger): void {
  const errors = new LogThrottle(1, ERROR_LOG_INTERVAL_MS)
  client.on('ready', () => log.info('redis ready'))
  client.on('end', () => log.info('redis connection closed'))
  client.on('error', (error: Error) => {
    if (errors.admit()) log.warn({ err: error }, 'redis unavailable; caching and shared rate limits are degraded')
  })
}

async function waitUntilReady (client: Redis, maxWaitMs: number): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, maxWaitMs)
    client.once('ready', done)
    function done (): void {
      clearTimeout(timer)
      client.off('ready', done)
      resolve()
    }
  })
}

/** Quits politely when the connection is up, else drops it: closing never waits on a Redis that is gone. */
export async function closeRedis (client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit()
      return
    } catch {
      // fall through: the connection went away while quitting
    }
  }
  client.disconnect()
}
