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
  /** How long an entry is fresh: the memory tier keeps none past its freshness. */
  freshLifetimeMs: (entry: StoredEntry) => number
}

export type TieredPhoneListStore = PhoneListStore & PhoneListChangeListener

// A read of the shared tier under way; a change heard meanwhile may mean it brings an older entry.
interface SharedRead {
  entry: Promise<StoredEntry | undefined>
  overtaken: boolean
}

/**
 * Two tiers: fresh entries are held in this process and answered from there without I/O; the shared
 * store stays the truth, the holder of stale entries and the coalescing point of fills. The memory
 * tier only holds an entry while it is fresh and while the changes feed is heard: a change announced
 * by any instance drops the other instances' copies, and when the feed may have missed one the tier
 * is emptied and stays unused until the subscription is back, so an old list is never served for a
 * change that was made.
 */
export function createTieredPhoneListStore (options: TieredPhoneListStoreOptions): TieredPhoneListStore {
  const { memory, shared, freshLifetimeMs } = options
  let listening = false
  const reads = new Map<string, SharedRead>()

  // Kept until the end of its freshness: past it the service asks the shared tier, which knows stale from gone.
  function remember (appkey: string, entry: StoredEntry): void {
    const freshUntilMs = entry.fetchedAtMs + freshLifetimeMs(entry)
    if (listening && freshUntilMs > Date.now()) memory.keepUntil(appkey, entry, freshUntilMs)
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

  return {
    // The hit path: the memory tier alone, which is empty whenever it could be out of date.
    peek: memory.peek,
    async get (appkey) {
      return memory.peek(appkey) ?? await readShared(appkey)
    },
    async set (appkey, entry, retainSeconds) {
      overtakeRead(appkey)
      // Held before it is written, so a peer's later change (heard after the write) drops it.
      remember(appkey, entry)
      try {
        await shared.set(appkey, entry, retainSeconds)
      } catch (error) {
        memory.forget(appkey)
        throw error
      }
    },
    async delete (appkey) {
      overtakeRead(appkey)
      memory.forget(appkey)
      await shared.delete(appkey)
    },
    listening () {
      listening = true
    },
    deaf () {
      listening = false
      memory.clear()
      for (const read of reads.values()) read.overtaken = true
      reads.clear()
    },
    changed (appkey, version) {
      const held = memory.peek(appkey)
      // This instance's own write comes back with the version it already holds.
      if (held !== undefined && (version === undefined || versionOf(held) !== version)) memory.forget(appkey)
      overtakeRead(appkey)
    },
  }
}
