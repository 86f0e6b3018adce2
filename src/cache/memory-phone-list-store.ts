import { LRUCache } from 'lru-cache'
import type { PhoneListStore, StoredEntry } from './phone-list-store.js'

interface Retained {
  entry: StoredEntry
  /** Until when `peek` answers it. */
  expiresAtMs: number
  /** Until when `held` still answers it, for stale-if-error; at least `expiresAtMs`. */
  heldUntilMs: number
}

/**
 * What an entry costs besides the characters of its strings and its bytes: the entry and retention
 * objects, the string headers, the bytes' Buffer object, the key's slot in the LRU's map and lists,
 * the fields' prefix kept by a string read from Redis and sliced. Measured on Node 20 at 300–340
 * bytes an entry without the Buffer, about 375 more with it, from 20,000 to 200,000 entries; rounded
 * up so the estimate does not fall short of the memory taken (test/bench/edge-figures.ts measures it: memoryTierHeap).
 */
export const ENTRY_OVERHEAD_BYTES = 850

/** The in-process tier: also `set` with absolute ends, and emptied at once when told to. */
export interface MemoryPhoneListStore extends PhoneListStore {
  readonly peek: (appkey: string) => StoredEntry | undefined
  /**
   * Keeps `entry`: `peek` answers it until `expiresAtMs` (the tiered store's end of freshness), `held`
   * until `heldUntilMs` (its end of stale-if-error), both absolute times.
   */
  keepUntil (appkey: string, entry: StoredEntry, expiresAtMs: number, heldUntilMs?: number): void
  /** The entry while it is held, past `peek`'s end too: what a failing shared tier leaves to serve. */
  held (appkey: string): StoredEntry | undefined
  forget (appkey: string): void
  clear (): void
  /** The estimated bytes held, which the bound applies to. */
  readonly bytes: number
  readonly size: number
}

/**
 * Phone lists held in this process, bounded by the estimated bytes of the entries (least recently
 * used out first), each dropped once its retention has passed. The store of a single instance, and
 * the memory tier of the tiered store.
 */
export function createMemoryPhoneListStore (maxBytes: number): MemoryPhoneListStore {
  const entries = new LRUCache<string, Retained>({ maxSize: maxBytes, sizeCalculation: bytesOf })
  const peek = (appkey: string): StoredEntry | undefined => {
    const retained = entries.get(appkey)
    if (retained === undefined) return undefined
    const nowMs = Date.now()
    if (nowMs < retained.expiresAtMs) return retained.entry
    if (nowMs >= retained.heldUntilMs) entries.delete(appkey)
    return undefined
  }
  const held = (appkey: string): StoredEntry | undefined => {
    const retained = entries.get(appkey)
    if (retained === undefined) return undefined
    if (Date.now() < retained.heldUntilMs) return retained.entry
    entries.delete(appkey)
    return undefined
  }
  const keepUntil = (appkey: string, entry: StoredEntry, expiresAtMs: number, heldUntilMs = expiresAtMs): void => {
    // An entry larger than the whole bound is not kept, and no older one stays in its place.
    entries.set(appkey, { entry, expiresAtMs, heldUntilMs: Math.max(expiresAtMs, heldUntilMs) })
  }
  const forget = (appkey: string): void => { entries.delete(appkey) }
  return {
    peek,
    held,
    keepUntil,
    forget,
    get: async (appkey) => peek(appkey),
    set: async (appkey, entry, retainSeconds) => { keepUntil(appkey, entry, Date.now() + retainSeconds * 1000) },
    delete: async (appkey) => { forget(appkey) },
    clear: () => { entries.clear() },
    get bytes () { return entries.calculatedSize },
    get size () { return entries.size },
  }
}

function bytesOf (retained: Retained, appkey: string): number {
  const { entry } = retained
  const text = entry.kind === 'list' ? stringBytes(entry.body) + entry.bytes.length + stringBytes(entry.etag) : stringBytes(entry.message ?? '')
  return ENTRY_OVERHEAD_BYTES + stringBytes(appkey) + text
}

// V8 keeps a string at one byte a character when every character fits in one, else at two (UTF-16).
// Counting only ASCII as one-byte is cheap (the UTF-8 length equals the length) and never under-counts.
function stringBytes (text: string): number {
  return Buffer.byteLength(text, 'utf8') === text.length ? text.length : text.length * 2
}
