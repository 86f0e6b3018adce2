import { randomUUID } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import { NO_LEASE, type CachedPhoneList, type FillLease, type PhoneListCache } from './phone-list-cache.js'

// The value layout is versioned in the key so a rolling deploy that changes it never misreads a peer's entry.
const ENTRY_KEY = 'phones:v1:'
const LEASE_KEY = 'phones-fill:v1:'

// Deletes the lease only if it is still ours: it may have expired and been taken by a peer meanwhile.
const RELEASE_LEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    releasePhoneListLease (key: string, token: string): Result<number, Context>
  }
}

/**
 * The cache shared by every instance. An entry is stored as `<fetchedAtMs>:<body>` so a hit is sent
 * without parsing or re-serialising it.
 */
export function createRedisPhoneListCache (redis: Redis, keyPrefix: string): PhoneListCache {
  redis.defineCommand('releasePhoneListLease', { numberOfKeys: 1, lua: RELEASE_LEASE_SCRIPT })
  const entryKey = (appkey: string) => `${keyPrefix}${ENTRY_KEY}${appkey}`
  const leaseKey = (appkey: string) => `${keyPrefix}${LEASE_KEY}${appkey}`

  return {
    peek: () => undefined,
    async get (appkey) {
      return parseEntry(await redis.get(entryKey(appkey)))
    },
    async set (appkey, entry, ttlSeconds) {
      await redis.set(entryKey(appkey), `${entry.fetchedAtMs}:${entry.body}`, 'EX', ttlSeconds)
    },
    async acquireFillLease (appkey, leaseMs): Promise<FillLease> {
      const token = randomUUID()
      const key = leaseKey(appkey)
      const taken = await redis.set(key, token, 'PX', leaseMs, 'NX')
      if (taken !== 'OK') return NO_LEASE
      return { acquired: true, release: async () => { await redis.releasePhoneListLease(key, token) } }
    },
    async isFillLeaseHeld (appkey) {
      return await redis.exists(leaseKey(appkey)) === 1
    },
  }
}

function parseEntry (stored: string | null): CachedPhoneList | undefined {
  if (stored === null) return undefined
  const separator = stored.indexOf(':')
  const fetchedAtMs = Number(stored.slice(0, separator))
  if (separator < 1 || !Number.isSafeInteger(fetchedAtMs)) return undefined
  return { fetchedAtMs, body: stored.slice(separator + 1) }
}
