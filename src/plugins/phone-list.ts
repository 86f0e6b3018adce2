import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { createMemoryPhoneListStore } from '../cache/memory-phone-list-store.js'
import { followPhoneListChanges } from '../cache/phone-list-changes.js'
import type { FillLeases, PhoneListStore } from '../cache/phone-list-store.js'
import { createRedisFillLeases, createRedisPhoneListStore } from '../cache/redis-phone-list-store.js'
import { createTieredPhoneListStore, type TieredPhoneListStore } from '../cache/tiered-phone-list-store.js'
import { createNxCloudClient, type NxCloudClientOptions } from '../nxcloud/nxcloud-client.js'
import { createPhoneListService, freshLifetimeMsOf, type CachePolicy, type PhoneListService } from '../phones/phone-list-service.js'
import { REDIS_STARTUP_WAIT_MS, closeRedis } from './redis.js'

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

interface Storage {
  store: PhoneListStore | undefined
  fillLeases: FillLeases | undefined
}

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
  if (app.redis === undefined) return { store: memory, fillLeases: undefined }
  const store = createTieredPhoneListStore({
    memory,
    shared: createRedisPhoneListStore(app.redis, options.cacheKeyPrefix),
    freshLifetimeMs: freshLifetimeMsOf(options.cachePolicy),
  })
  await followChanges(app, app.redis, options.cacheKeyPrefix, store)
  return { store, fillLeases: createRedisFillLeases(app.redis, options.cacheKeyPrefix) }
}

// A subscribed connection can send nothing else, so the feed has its own, named for `CLIENT LIST`.
async function followChanges (app: FastifyInstance, redis: Redis, keyPrefix: string, store: TieredPhoneListStore): Promise<void> {
  const subscriber = redis.duplicate({ connectionName: `${keyPrefix}phone-list-changes`, autoResubscribe: false })
  const feed = followPhoneListChanges(subscriber, keyPrefix, store, app.log)
  app.metrics.readChangeFeedFrom(() => feed.isListening())
  app.addHook('onClose', async () => {
    feed.stop()
    await closeRedis(subscriber)
  })
  // Without the subscription the memory tier stays unused; start-up waits for it only while Redis answers.
  if (redis.status === 'ready') await feed.subscribed(REDIS_STARTUP_WAIT_MS)
}
