import type { Test } from 'tap'
import { pino } from 'pino'
import { createRedisPhoneListStore } from '../../src/cache/redis-phone-list-store.js'
import type { PhoneListStore } from '../../src/cache/phone-list-store.js'
import { pingRedis, type RedisClient } from '../../src/redis/redis-client.js'
import { createRedisHealthGate } from '../../src/redis/redis-health-gate.js'

/** The shared store as another instance would write through it, on a test's own client. */
export function peerPhoneListStore (t: Test, redis: RedisClient, keyPrefix: string): PhoneListStore {
  const gate = createRedisHealthGate({ client: redis, probe: () => pingRedis(redis), log: pino({ level: 'silent' }) })
  t.teardown(() => { gate.close() })
  return createRedisPhoneListStore(redis, keyPrefix, gate)
}
