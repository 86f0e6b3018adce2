import { randomUUID } from 'node:crypto'
import type { Redis, Result } from 'ioredis'
import type { FillLease, FillLeases, PhoneListStore, StoredEntry } from './phone-list-store.js'

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

const LIST_MARK = 'L'
const UNKNOWN_TENANT_MARK = 'N'

/**
 * The store shared by every instance. A list is stored as `L\n<fetchedAtMs>\n<etag>\n<body>` so a
 * hit is sent without parsing or re-serialising the body; an unknown tenant as
 * `N\n<fetchedAtMs>\n<upstreamCode>\n<detail>`.
 */
export function createRedisPhoneListStore (redis: Redis, keyPrefix: string): PhoneListStore {
  const entryKey = (appkey: string) => `${keyPrefix}${ENTRY_KEY}${appkey}`
  return {
    async get (appkey) {
      return parseEntry(await redis.get(entryKey(appkey)))
    },
    async set (appkey, entry, retainSeconds) {
      await redis.set(entryKey(appkey), formatEntry(entry), 'EX', retainSeconds)
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

function formatEntry (entry: StoredEntry): string {
  const fields = entry.kind === 'list'
    ? [LIST_MARK, entry.fetchedAtMs, entry.etag, entry.body]
    : [UNKNOWN_TENANT_MARK, entry.fetchedAtMs, entry.upstreamCode, entry.detail]
  return fields.join(FIELD_SEPARATOR)
}

// The first three fields never hold the separator; the last (the body, or a detail) may.
function parseEntry (stored: string | null): StoredEntry | undefined {
  if (stored === null) return undefined
  const fields: string[] = []
  let start = 0
  for (let field = 0; field < 3; field++) {
    const end = stored.indexOf(FIELD_SEPARATOR, start)
    if (end < 0) return undefined
    fields.push(stored.slice(start, end))
    start = end + 1
  }
  const [mark, fetchedAt = '', third = ''] = fields
  const fetchedAtMs = Number(fetchedAt)
  const last = stored.slice(start)
  if (!Number.isSafeInteger(fetchedAtMs)) return undefined
  if (mark === LIST_MARK) return { kind: 'list', fetchedAtMs, etag: third, body: last }
  const upstreamCode = Number(third)
  if (mark === UNKNOWN_TENANT_MARK && Number.isSafeInteger(upstreamCode)) return { kind: 'unknown-tenant', fetchedAtMs, upstreamCode, detail: last }
  return undefined
}
