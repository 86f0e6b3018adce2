import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { createMemoryPhoneListStore } from '../cache/memory-phone-list-store.js'
import { followPhoneListChanges } from '../cache/phone-list-changes.js'
import { createRedisFillLeases, createRedisPhoneListStore } from '../cache/redis-phone-list-store.js'
import { createTieredPhoneListStore, type TieredPhoneListStore } from '../cache/tiered-phone-list-store.js'
import { createNxCloudClient, type NxCloudClientOptions } from '../nxcloud/nxcloud-client.js'
import { createPhoneListService, freshLifetimeMsOf, heldLifetimeMsOf, type CachePolicy, type PhoneListService, type PhoneListServiceOptions } from '../phones/phone-list-service.js'
import { REDIS_STARTUP_WAIT_MS } from './redis.js'

declare module 'fastify' {
  interface FastifyInstance {
    phoneListService: PhoneListService
  }
}

export interface PhoneListPluginOptions {
  nxcloud: NxCloudClientOptions
  cachePolicy: CachePolicy
  cacheKeyPrefix: string
  /** Bound of the in-process tier (or the only cache without Redis), in estimated bytes of entries. */
  cacheMemoryMaxBytes: number
}

type Storage = Pick<PhoneListServiceOptions, 'store' | 'fillLeases'>

/** Wires the NxCloud client, the store chosen by the configuration and the service that joins them. */
export const phoneListPlugin = fp<PhoneListPluginOptions>(async function phoneList (app, options) {
  const client = createNxCloudClient({ ...options.nxcloud, observer: app.metrics.nxcloudCalls, log: app.log })
  app.addHook('onClose', async () => { await client.close() })
  app.metrics.readUpstreamLoadFrom(() => client.load())
  app.decorate('phoneListService', createPhoneListService({
    client,
    ...await chooseStorage(app, options),
    policy: options.cachePolicy,
    upstreamTimeoutMs: options.nxcloud.timeoutMs,
    events: app.metrics.phoneListEvents,
  }))
}, { name: 'phone-list', dependencies: ['redis', 'metrics'] })

// The one place that picks the storage, as @fastify/rate-limit picks its store.
async function chooseStorage (app: FastifyInstance, options: PhoneListPluginOptions): Promise<Storage> {
  if (options.cachePolicy.ttlSeconds === 0) return { store: undefined, fillLeases: undefined }
  const memory = createMemoryPhoneListStore(options.cacheMemoryMaxBytes)
  const { redis, redisGate: gate, redisSubscriberConnections: subscriberConnections } = app
  if (redis === undefined || gate === undefined || subscriberConnections === undefined) return { store: memory, fillLeases: undefined }
  const store = createTieredPhoneListStore({
    memory,
    shared: createRedisPhoneListStore(redis, options.cacheKeyPrefix, gate),
    freshLifetimeMs: freshLifetimeMsOf(options.cachePolicy),
    heldLifetimeMs: heldLifetimeMsOf(options.cachePolicy),
  })
  await followChanges(app, subscriberConnections(`${options.cacheKeyPrefix}phone-list-changes`), options.cacheKeyPrefix, store, redis.status === 'ready')
  return { store, fillLeases: createRedisFillLeases(redis, options.cacheKeyPrefix, gate) }
}

// A subscribed connection can send nothing else, so the feed has its own, named for `CLIENT LIST`.
async function followChanges (app: FastifyInstance, connect: () => Redis, keyPrefix: string, store: TieredPhoneListStore, redisReady: boolean): Promise<void> {
  const feed = followPhoneListChanges(connect, keyPrefix, store, app.log)
  app.metrics.readChangeFeedFrom(() => feed.isListening())
  app.addHook('onClose', async () => { await feed.close() })
  // Changes are unheard until subscribed; start-up waits for the subscription only while Redis answers.
  if (redisReady) await feed.subscribed(REDIS_STARTUP_WAIT_MS)
}
