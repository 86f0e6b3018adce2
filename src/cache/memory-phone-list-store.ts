import { LruMap } from 'toad-cache'
import type { PhoneListStore, StoredPhoneList } from './phone-list-store.js'

/**
 * The single-instance store used when no Redis is configured: bounded in entries, least recently
 * used out first. Every entry is kept as long as the service's retention (toad-cache expires them).
 */
export function createMemoryPhoneListStore (maxEntries: number, retainSeconds: number): PhoneListStore {
  const entries = new LruMap<StoredPhoneList>(maxEntries, retainSeconds * 1000)
  return {
    peek: (appkey) => entries.get(appkey),
    get: async (appkey) => entries.get(appkey),
    set: async (appkey, entry) => { entries.set(appkey, entry) },
    delete: async (appkey) => { entries.delete(appkey) },
  }
}
