import { randomUUID } from 'node:crypto'
import type { Result } from 'ioredis'
import type { RedisClient } from '../redis/redis-client.js'
import type { RedisHealthGate } from '../redis/redis-health-gate.js'
import { storedPhoneList, versionOf, type FillLease, type FillLeases, type PhoneListStore, type StoredEntry } from './phone-list-store.js'

// The value layout is versioned in the key so a rolling deploy that changes it never misreads a peer's entry.
const ENTRY_KEY = 'phones:v2:'
const LEASE_KEY = 'phones-fill:v1:'
const CHANGES_CHANNEL = 'phones-changed:v1'
const FIELD_SEPARATOR = '\n'

// Every script touches one key, so each runs on a cluster as on a single server. The announcements use
// classic pub/sub, which a cluster carries to every node: one low-volume channel that every instance
// needs in full. Sharded pub/sub (SPUBLISH) would put that one channel on one shard all the same, or,
// to publish from the script that writes an entry, need a channel per tenant in the entry's slot and
// every instance subscribed to all of them on every shard.
// A write and its announcement in one script: a write is never left unannounced (as a lost connection
// between two commands would leave it), and peers hear of writes in the order they were made.
const SET_AND_ANNOUNCE_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[4])`
const DELETE_AND_ANNOUNCE_SCRIPT = `
redis.call('DEL', KEYS[1])
return redis.call('PUBLISH', ARGV[1], ARGV[2])`

// Deletes the lease only if it is still ours: it may have expired and been taken by a peer meanwhile.
const RELEASE_LEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    releasePhoneListLease (key: string, token: string): Result<number, Context>
    setPhoneListAndAnnounce (key: string, value: string, seconds: number, channel: string, change: string): Result<number, Context>
    deletePhoneListAndAnnounce (key: string, channel: string, change: string): Result<number, Context>
  }
}

const NO_LEASE: FillLease = { acquired: false, release: async () => {} }

const LIST_MARK = 'L'
const UNKNOWN_TENANT_MARK = 'N'

/**
 * The store shared by every instance. A list is stored as `L\n<fetchedAtMs>\n<etag>\n<body>` so a
 * hit is sent without parsing or re-serialising the body; an unknown tenant as
 * `N\n<fetchedAtMs>\n<upstreamCode>\n<message>` (empty without one). Every write and delete is announced
 * on the changes channel (`<appkey>\n<version>`, or `<appkey>` alone for a delete) so each instance's
 * memory tier can drop what it holds. Every command goes through the health gate: none is sent, and
 * none waits, while Redis is known to be failing.
 */
export function createRedisPhoneListStore (redis: RedisClient, keyPrefix: string, gate: RedisHealthGate): PhoneListStore {
  redis.defineCommand('setPhoneListAndAnnounce', { numberOfKeys: 1, lua: SET_AND_ANNOUNCE_SCRIPT })
  redis.defineCommand('deletePhoneListAndAnnounce', { numberOfKeys: 1, lua: DELETE_AND_ANNOUNCE_SCRIPT })
  const entryKey = (appkey: string) => `${keyPrefix}${ENTRY_KEY}${appkey}`
  const channel = phoneListChangesChannel(keyPrefix)
  return {
    async get (appkey) {
      return parseEntry(await gate.run(() => redis.get(entryKey(appkey))))
    },
    async set (appkey, entry, retainSeconds) {
      const change = `${appkey}${FIELD_SEPARATOR}${versionOf(entry)}`
      await gate.run(() => redis.setPhoneListAndAnnounce(entryKey(appkey), formatEntry(entry), retainSeconds, channel, change))
    },
    async delete (appkey) {
      await gate.run(() => redis.deletePhoneListAndAnnounce(entryKey(appkey), channel, appkey))
    },
  }
}

/** The channel on which the shared store announces its changes, under the instances' key prefix. */
export function phoneListChangesChannel (keyPrefix: string): string {
  return `${keyPrefix}${CHANGES_CHANNEL}`
}

/** A tenant whose shared entry changed, and the version it holds now (none: deleted). */
export interface PhoneListChange {
  appkey: string
  version: string | undefined
}

export function parsePhoneListChange (message: string): PhoneListChange {
  const end = message.indexOf(FIELD_SEPARATOR)
  return end < 0 ? { appkey: message, version: undefined } : { appkey: message.slice(0, end), version: message.slice(end + 1) }
}

/** Fill leases in Redis: one instance fills a tenant's entry while its peers wait for it. */
export function createRedisFillLeases (redis: RedisClient, keyPrefix: string, gate: RedisHealthGate): FillLeases {
  redis.defineCommand('releasePhoneListLease', { numberOfKeys: 1, lua: RELEASE_LEASE_SCRIPT })
  const leaseKey = (appkey: string) => `${keyPrefix}${LEASE_KEY}${appkey}`
  return {
    async acquire (appkey, leaseMs) {
      const token = randomUUID()
      const key = leaseKey(appkey)
      const taken = await gate.run(() => redis.set(key, token, 'PX', leaseMs, 'NX'))
      if (taken !== 'OK') return NO_LEASE
      return { acquired: true, release: async () => { await gate.run(() => redis.releasePhoneListLease(key, token)) } }
    },
    async isHeld (appkey) {
      return await gate.run(() => redis.exists(leaseKey(appkey))) === 1
    },
  }
}

function formatEntry (entry: StoredEntry): string {
  const fields = entry.kind === 'list'
    ? [LIST_MARK, entry.fetchedAtMs, entry.etag, entry.body]
    : [UNKNOWN_TENANT_MARK, entry.fetchedAtMs, entry.upstreamCode, entry.message ?? '']
  return fields.join(FIELD_SEPARATOR)
}

// The first three fields never hold the separator; the last (the body, or a message) may.
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
  if (mark === LIST_MARK) return storedPhoneList(last, third, fetchedAtMs)
  const upstreamCode = Number(third)
  if (mark === UNKNOWN_TENANT_MARK && Number.isSafeInteger(upstreamCode)) return { kind: 'unknown-tenant', fetchedAtMs, upstreamCode, message: last === '' ? undefined : last }
  return undefined
}
