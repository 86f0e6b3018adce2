import fp from 'fastify-plugin'
import { createMemoryPhoneListCache } from '../cache/memory-phone-list-cache.js'
import type { PhoneListCache } from '../cache/phone-list-cache.js'
import { createRedisPhoneListCache } from '../cache/redis-phone-list-cache.js'
import { createNxCloudClient, type NxCloudClientOptions } from '../nxcloud/nxcloud-client.js'
import { createPhoneListService, type PhoneListService } from '../phones/phone-list-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    phoneListService: PhoneListService
  }
}

export interface PhoneListPluginOptions {
  nxcloud: NxCloudClientOptions
  cacheTtlSeconds: number
  cacheKeyPrefix: string
  cacheMaxEntries: number
}

/** Wires the NxCloud client, the cache chosen by the configuration and the service that joins them. */
export const phoneListPlugin = fp<PhoneListPluginOptions>(async function phoneList (app, options) {
  const client = createNxCloudClient(options.nxcloud)
  app.addHook('onClose', async () => { await client.close() })
  app.decorate('phoneListService', createPhoneListService({
    client,
    cache: chooseCache(app.redis, options),
    ttlSeconds: options.cacheTtlSeconds,
    upstreamTimeoutMs: options.nxcloud.timeoutMs,
  }))
}, { name: 'phone-list', dependencies: ['redis'] })

function chooseCache (
  redis: Parameters<typeof createRedisPhoneListCache>[0] | undefined,
  options: PhoneListPluginOptions
): PhoneListCache | undefined {
  if (options.cacheTtlSeconds === 0) return undefined
  if (redis !== undefined) return createRedisPhoneListCache(redis, options.cacheKeyPrefix)
  return createMemoryPhoneListCache(options.cacheMaxEntries, options.cacheTtlSeconds)
}
