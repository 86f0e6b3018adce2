/** A client's count in its current window, as the store reports it after counting a request. */
export interface WindowCount {
  /** Requests counted in the window, this one included: over the limit means refused. */
  readonly count: number
  readonly windowEndsAtMs: number
}

/**
 * One client's fixed window, started by its first request. With Redis, the window Redis holds (begun
 * by whichever instance first sent a count for it) replaces this one at each sync.
 */
export class WindowCounter implements WindowCount {
  count = 0
  windowEndsAtMs = 0
  /** The length of its windows, which Redis starts the shared window with. */
  windowMs = 0
  /** Numbers this client's windows, so that a sync answered after the window changed is not adopted. */
  generation = 0
  /** The limit last checked against: a counter at or over it is never evicted. */
  max = Number.POSITIVE_INFINITY
  /** Requests counted here that the shared count has not received yet. */
  unsynced = 0
  /** Waiting in the queue of the next sync. */
  queued = false

  constructor (
    /** The rate-limit key: a caller id, or an address (see plugins/rate-limit.ts). */
    readonly key: string
  ) {}

  startWindow (nowMs: number, windowMs: number): void {
    this.generation++
    this.windowMs = windowMs
    this.windowEndsAtMs = nowMs + windowMs
    this.count = 0
    // What was counted in an ended window matters to nobody any more, here or in Redis.
    this.unsynced = 0
  }
}

// When the map reaches its bound, this share of it is reclaimed at once, so reclaiming is rare.
const RECLAIM_SHARE = 0.1

/**
 * The counters held in this process. Bounded without ever forgetting a limited client: when full, it
 * drops ended windows and then clients still under their limit, oldest first, and never one that has
 * reached it. (An LRU, as @fastify/rate-limit's LocalStore uses, lets a limited client through again as
 * soon as enough others have called after it.)
 */
export class WindowCounters {
  readonly #counters = new Map<string, WindowCounter>()

  constructor (private readonly maxTracked: number) {}

  /** The key's counter in the window `nowMs` falls in: created, or restarted when its window has ended. */
  current (key: string, nowMs: number, windowMs: number): WindowCounter {
    let counter = this.#counters.get(key)
    if (counter === undefined) {
      if (this.#counters.size >= this.maxTracked) this.#reclaim(nowMs)
      counter = new WindowCounter(key)
      counter.startWindow(nowMs, windowMs)
      this.#counters.set(key, counter)
    } else if (counter.windowEndsAtMs <= nowMs) {
      counter.startWindow(nowMs, windowMs)
    }
    return counter
  }

  #reclaim (nowMs: number): void {
    const target = Math.floor(this.maxTracked * (1 - RECLAIM_SHARE))
    for (const [key, counter] of this.#counters) {
      if (this.#counters.size <= target) return
      if (counter.windowEndsAtMs <= nowMs || counter.count < counter.max) {
        this.#counters.delete(key)
        // Its last few requests are not shared then: memory is short, and this client is under its limit.
        counter.unsynced = 0
      }
    }
  }
}
