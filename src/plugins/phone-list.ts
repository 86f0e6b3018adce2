import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { createMemoryPhoneListStore } from '../cache/memory-phone-list-store.js'
import type { FillLeases, PhoneListStore } from '../cache/phone-list-store.js'
import { createRedisFillLeases, createRedisPhoneListStore } from '../cache/redis-phone-list-store.js'
import { createNxCloudClient, type NxCloudClientOptions } from '../nxcloud/nxcloud-client.js'
import { createPhoneListService, type CachePolicy, type PhoneListService } from '../phones/phone-list-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    phoneListService: PhoneListService
  }
}

export interface PhoneListPluginOptions {
  nxcloud: NxCloudClientOptions
  cachePolicy: CachePolicy
  cacheKeyPrefix: string
  cacheMaxEntries: number
}

/** Wires the NxCloud client, the store chosen by the configuration and the service that joins them. */
export const phoneListPlugin = fp<PhoneListPluginOptions>(async function phoneList (app, options) {
  const client = createNxCloudClient(options.nxcloud)
  app.addHook('onClose', async () => { await client.close() })
  app.decorate('phoneListService', createPhoneListService({
    client,
    ...chooseStorage(app.redis, options),
    policy: options.cachePolicy,
    upstreamTimeoutMs: options.nxcloud.timeoutMs,
  }))
}, { name: 'phone-list', dependencies: ['redis'] })

// The one place that picks the storage, as @fastify/rate-limit picks its store.
function chooseStorage (redis: Redis | undefined, options: PhoneListPluginOptions): { store: PhoneListStore | undefined, fillLeases: FillLeases | undefined } {
  if (options.cachePolicy.ttlSeconds === 0) return { store: undefined, fillLeases: undefined }
  if (redis === undefined) return { store: createMemoryPhoneListStore(options.cacheMaxEntries), fillLeases: undefined }
  return { store: createRedisPhoneListStore(redis, options.cacheKeyPrefix), fillLeases: createRedisFillLeases(redis, options.cacheKeyPrefix) }
}
