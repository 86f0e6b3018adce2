import fp from 'fastify-plugin'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { LogThrottle } from '../logging/log-throttle.js'
import { closeRedis, createRedisClient, pingRedis, subscriberConnections, type RedisClient, type RedisTopology } from '../redis/redis-client.js'
import { createRedisHealthGate, type RedisHealthGate } from '../redis/redis-health-gate.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The shared Redis client (a server, a Sentinel group's master, or a cluster), or undefined without Redis. */
    redis: RedisClient | undefined
    /** Whether Redis is worth asking now; every command of the cache and the limiter goes through it. */
    redisGate: RedisHealthGate | undefined
    /** Makes connections for a subscriber named `connectionName`, the topology's way. */
    redisSubscriberConnections: ((connectionName: string) => () => Redis) | undefined
  }
}

export interface RedisPluginOptions {
  topology: RedisTopology | undefined
  commandTimeoutMs: number
}

// Start-up waits this long for Redis; past it the service starts degraded and keeps reconnecting.
export const REDIS_STARTUP_WAIT_MS = 2_000
const ERROR_LOG_INTERVAL_MS = 10_000

/** Opens the client of the configured topology and its health gate, and closes both on close. */
export const redisPlugin = fp<RedisPluginOptions>(async function redis (app, options) {
  const { topology } = options
  if (topology === undefined) {
    app.decorate('redis', undefined)
    app.decorate('redisGate', undefined)
    app.decorate('redisSubscriberConnections', undefined)
    return
  }
  const client = createRedisClient(topology, options.commandTimeoutMs, () => {
    app.log.warn('redis client given up by ioredis (a failover notice cut a reconnection short): connecting again')
  })
  logConnectionEvents(client, app.log)
  const gate = createRedisHealthGate({ client, probe: () => pingRedis(client), log: app.log })
  app.decorate<RedisClient | undefined>('redis', client)
  app.decorate('redisGate', gate)
  app.decorate('redisSubscriberConnections', (connectionName: string) => subscriberConnections(client, topology, connectionName))
  app.addHook('onClose', async () => {
    gate.close()
    await closeRedis(client)
  })
  await waitUntilReady(client, REDIS_STARTUP_WAIT_MS)
}, { name: 'redis' })

function logConnectionEvents (client: RedisClient, log: FastifyBaseLogger): void {
  const errors = new LogThrottle(1, ERROR_LOG_INTERVAL_MS)
  client.on('ready', () => log.info('redis ready'))
  client.on('end', () => log.info('redis connection closed'))
  client.on('error', (error: Error) => {
    if (errors.admit()) log.warn({ err: error }, 'redis unavailable; caching and shared rate limits are degraded')
  })
}

async function waitUntilReady (client: RedisClient, maxWaitMs: number): Promise<void> {
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
