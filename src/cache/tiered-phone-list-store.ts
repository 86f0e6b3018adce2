import type { MemoryPhoneListStore } from './memory-phone-list-store.js'
import { versionOf, type PhoneListStore, type StoredEntry } from './phone-list-store.js'

/** What the tiered store is told by the feed of the shared store's changes. */
export interface PhoneListChangeListener {
  /** Subscribed: every change from now on will be heard. */
  listening (): void
  /** Changes may go unheard from now on (the subscription is lost or not made yet). */
  deaf (): void
  /** A tenant's shared entry changed; `version` is what it holds now, undefined when it was deleted. */
  changed (appkey: string, version: string | undefined): void
}

export interface TieredPhoneListStoreOptions {
  memory: MemoryPhoneListStore
  shared: PhoneListStore
  /** How long an entry is fresh: the memory tier answers none as a hit past its freshness. */
  freshLifetimeMs: (entry: StoredEntry) => number
  /** How long an entry may still be served when the shared tier fails (stale-if-error); at least its freshness. */
  heldLifetimeMs: (entry: StoredEntry) => number
}

export type TieredPhoneListStore = PhoneListStore & PhoneListChangeListener

// A read of the shared tier under way; a change heard meanwhile may mean it brings an older entry.
interface SharedRead {
  entry: Promise<StoredEntry | undefined>
  overtaken: boolean
}

/**
 * Two tiers: fresh entries are held in this process and answered from there without I/O; the shared
 * store stays the truth, the holder of stale entries and the coalescing point of fills. A change
 * announced by any instance drops the other instances' copies.
 *
 * When the shared store fails, the memory tier carries on: it answers what it holds while fresh, keeps
 * what this instance fills from NxCloud, and hands the service the stale entries it still holds
 * (stale-while-revalidate, stale-if-error) instead of the failure. While the change feed is not heard
 * (an outage, a lost subscription) a peer's change can go unheard, so an entry can be served for what
 * is left of its freshness after a change was made elsewhere, never longer; once the feed is heard
 * again, the memory tier is emptied, since anything in it may have missed a change.
 */
export function createTieredPhoneListStore (options: TieredPhoneListStoreOptions): TieredPhoneListStore {
  const { memory, shared, freshLifetimeMs, heldLifetimeMs } = options
  let listening = false
  const reads = new Map<string, SharedRead>()

  // Answered as a hit until the end of its freshness (past it the service asks the shared tier, which
  // knows stale from gone); held past that only for when the shared tier fails.
  function remember (appkey: string, entry: StoredEntry): void {
    const heldUntilMs = entry.fetchedAtMs + heldLifetimeMs(entry)
    if (heldUntilMs > Date.now()) memory.keepUntil(appkey, entry, entry.fetchedAtMs + freshLifetimeMs(entry), heldUntilMs)
  }

  // Concurrent reads of one tenant share one command; what a read brings after a change is not kept.
  function readShared (appkey: string): Promise<StoredEntry | undefined> {
    const inFlight = reads.get(appkey)
    if (inFlight !== undefined) return inFlight.entry
    const read: SharedRead = { entry: Promise.resolve(undefined), overtaken: false }
    read.entry = shared.get(appkey)
      .then((entry) => {
        if (entry !== undefined && !read.overtaken) remember(appkey, entry)
        return entry
      })
      .finally(() => { if (reads.get(appkey) === read) reads.delete(appkey) })
    reads.set(appkey, read)
    return read.entry
  }

  function overtakeRead (appkey: string): void {
    const read = reads.get(appkey)
    if (read === undefined) return
    read.overtaken = true
    reads.delete(appkey)
  }

  function overtakeEveryRead (): void {
    for (const read of reads.values()) read.overtaken = true
    reads.clear()
  }

  return {
    // The hit path: the memory tier alone.
    peek: memory.peek,
    async get (appkey) {
      const fresh = memory.peek(appkey)
      if (fresh !== undefined) return fresh
      try {
        return await readShared(appkey)
      } catch (error) {
        // The shared tier failed: what this process still holds is the service's to judge (stale, or gone).
        const held = memory.held(appkey)
        if (held !== undefined) return held
        throw error
      }
    },
    async set (appkey, entry, retainSeconds) {
      overtakeRead(appkey)
      // Held before it is written, so a peer's later change (heard after the write) drops it; and kept
      // when the write fails, so that a Redis outage does not send every request to NxCloud.
      remember(appkey, entry)
      await shared.set(appkey, entry, retainSeconds)
    },
    async delete (appkey) {
      overtakeRead(appkey)
      memory.forget(appkey)
      await shared.delete(appkey)
    },
    listening () {
      if (listening) return
      listening = true
      // Whatever was held or read while the feed was not heard may have missed a change.
      memory.clear()
      overtakeEveryRead()
    },
    deaf () {
      listening = false
    },
    changed (appkey, version) {
      const held = memory.held(appkey)
      // This instance's own write comes back with the version it already holds.
      if (held !== undefined && (version === undefined || versionOf(held) !== version)) memory.forget(appkey)
      overtakeRead(appkey)
    },
  }
}
