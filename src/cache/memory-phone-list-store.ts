import { LruMap } from 'toad-cache'
import type { PhoneListStore, StoredEntry } from './phone-list-store.js'

interface Retained {
  entry: StoredEntry
  expiresAtMs: number
}

/**
 * The single-instance store used when no Redis is configured: bounded in entries, least recently
 * used out first, each entry dropped once its retention has passed.
 */
export function createMemoryPhoneListStore (maxEntries: number): PhoneListStore {
  const entries = new LruMap<Retained>(maxEntries)
  const read = (appkey: string): StoredEntry | undefined => {
    const retained = entries.get(appkey)
    if (retained === undefined) return undefined
    if (Date.now() < retained.expiresAtMs) return retained.entry
    entries.delete(appkey)
    return undefined
  }
  return {
    peek: read,
    get: async (appkey) => read(appkey),
    set: async (appkey, entry, retainSeconds) => { entries.set(appkey, { entry, expiresAtMs: Date.now() + retainSeconds * 1000 }) },
    delete: async (appkey) => { entries.delete(appkey) },
  }
}
