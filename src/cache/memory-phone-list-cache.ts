import { LruMap } from 'toad-cache'
import type { CachedPhoneList, FillLease, PhoneListCache } from './phone-list-cache.js'

const HELD_LEASE: FillLease = { acquired: true, release: async () => {} }

/**
 * The single-instance cache used when no Redis is configured: bounded, least recently used out first.
 * Within one process the service already coalesces concurrent fills, so every lease is granted.
 */
export function createMemoryPhoneListCache (maxEntries: number, ttlSeconds: number): PhoneListCache {
  const entries = new LruMap<CachedPhoneList>(maxEntries, ttlSeconds * 1000)
  return {
    peek: (appkey) => entries.get(appkey),
    get: async (appkey) => entries.get(appkey),
    set: async (appkey, entry) => { entries.set(appkey, entry) },
    acquireFillLease: async () => HELD_LEASE,
    isFillLeaseHeld: async () => false,
  }
}
