import { randomUUID } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import type { FillLease, FillLeases, PhoneListStore, StoredPhoneList } from './phone-list-store.js'

// The value layout is versioned in the key so a rolling deploy that changes it never misreads a peer's entry.
const ENTRY_KEY = 'phones:v2:'
const LEASE_KEY = 'phones-fill:v1:'
const FIELD_SEPARATOR = '\n'

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

const NO_LEASE: FillLease = { acquired: false, release: async () => {} }

/**
 * The store shared by every instance. An entry is stored as `<fetchedAtMs>\n<etag>\n<body>` so a
 * hit is sent without parsing or re-serialising the body.
 */
export function createRedisPhoneListStore (redis: Redis, keyPrefix: string): PhoneListStore {
  const entryKey = (appkey: string) => `${keyPrefix}${ENTRY_KEY}${appkey}`
  return {
    async get (appkey) {
      return parseEntry(await redis.get(entryKey(appkey)))
    },
    async set (appkey, entry, retainSeconds) {
      const value = `${entry.fetchedAtMs}${FIELD_SEPARATOR}${entry.etag}${FIELD_SEPARATOR}${entry.body}`
      await redis.set(entryKey(appkey), value, 'EX', retainSeconds)
    },
    async delete (appkey) {
      await redis.del(entryKey(appkey))
    },
  }
}

/** Fill leases in Redis: one instance fills a tenant's entry while its peers wait for it. */
export function createRedisFillLeases (redis: Redis, keyPrefix: string): FillLeases {
  redis.defineCommand('releasePhoneListLease', { numberOfKeys: 1, lua: RELEASE_LEASE_SCRIPT })
  const leaseKey = (appkey: string) => `${keyPrefix}${LEASE_KEY}${appkey}`
  return {
    async acquire (appkey, leaseMs) {
      const token = randomUUID()
      const key = leaseKey(appkey)
      const taken = await redis.set(key, token, 'PX', leaseMs, 'NX')
      if (taken !== 'OK') return NO_LEASE
      return { acquired: true, release: async () => { await redis.releasePhoneListLease(key, token) } }
    },
    async isHeld (appkey) {
      return await redis.exists(leaseKey(appkey)) === 1
    },
  }
}

function parseEntry (stored: string | null): StoredPhoneList | undefined {
  if (stored === null) return undefined
  const first = stored.indexOf(FIELD_SEPARATOR)
  const second = stored.indexOf(FIELD_SEPARATOR, first + 1)
  const fetchedAtMs = Number(stored.slice(0, first))
  if (first < 1 || second < 0 || !Number.isSafeInteger(fetchedAtMs)) return undefined
  return { fetchedAtMs, etag: stored.slice(first + 1, second), body: stored.slice(second + 1) }
}
