/** A caller's count in its current window, as @fastify/rate-limit's stores report it. */
export interface WindowCount {
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}

interface Counter {
  count: number
  windowEndsAtMs: number
  /** Set once the count went past the limit: such a counter is kept until its window ends. */
  limited: boolean
}

// When the map reaches its bound, this share of it is reclaimed at once, so reclaiming is rare.
const RECLAIM_SHARE = 0.1

/**
 * Fixed-window counters held in this process. Bounded without ever forgetting a limited caller:
 * when full, it drops ended windows and then callers still under their limit, oldest first, and
 * never a counter that is over it. (An LRU, as @fastify/rate-limit's LocalStore uses, lets a limited
 * client through again as soon as enough others have called after it.)
 */
export class LocalCounters {
  readonly #counters = new Map<string, Counter>()
  readonly #maxTracked: number

  constructor (maxTracked: number) {
    this.#maxTracked = maxTracked
  }

  get size (): number {
    return this.#counters.size
  }

  increment (key: string, windowMs: number, max: number): WindowCount {
    const now = Date.now()
    let counter = this.#counters.get(key)
    if (counter === undefined) {
      if (this.#counters.size >= this.#maxTracked) this.#reclaim(now)
      counter = { count: 0, windowEndsAtMs: now + windowMs, limited: false }
      this.#counters.set(key, counter)
    } else if (counter.windowEndsAtMs <= now) {
      counter.count = 0
      counter.windowEndsAtMs = now + windowMs
      counter.limited = false
    }
    counter.count++
    if (counter.count > max) counter.limited = true
    return { current: counter.count, ttl: counter.windowEndsAtMs - now }
  }

  read (key: string): WindowCount {
    const now = Date.now()
    const counter = this.#counters.get(key)
    if (counter === undefined || counter.windowEndsAtMs <= now) return { current: 0, ttl: 0 }
    return { current: counter.count, ttl: counter.windowEndsAtMs - now }
  }

  #reclaim (now: number): void {
    const target = Math.floor(this.#maxTracked * (1 - RECLAIM_SHARE))
    for (const [key, counter] of this.#counters) {
      if (this.#counters.size <= target) return
      if (counter.windowEndsAtMs <= now || !counter.limited) this.#counters.delete(key)
    }
  }
}
