import type { Redis } from 'ioredis'
import { LocalCounters, type WindowCount, type WindowCounter } from './local-counters.js'
import { SharedCounts } from './shared-counts.js'

/** The clients of one kind (callers by id, or addresses), each with its own budget per window. */
export interface RateLimitPartition {
  /**
   * Counts a request of `id` at `nowMs` and answers its window's count, this request included: over
   * `max` means refused. Synchronous (a live view, read it at once) except in exact shared mode
   * (RATE_LIMIT_SYNC_MS=0), where the count comes from Redis.
   */
  consume (id: string, max: number, nowMs: number): WindowCount | Promise<WindowCount>
  /**
   * Counts the request only when it is within the limit and counted without waiting (always, but in exact
   * shared mode): its window's count then; otherwise undefined, nothing counted, for `consume` to decide.
   */
  consumeWithinLimit (id: string, max: number, nowMs: number): WindowCount | undefined
}

export interface RateLimiter {
  readonly callers: RateLimitPartition
  readonly addresses: RateLimitPartition
  /** Stops syncing and sends the counts not yet shared. */
  close (): Promise<void>
}

export interface RateLimiterOptions {
  windowMs: number
  /** Bound of the counters kept in this process, per partition. */
  maxTracked: number
  /** Counts shared by every instance through Redis; undefined: this instance limits on its own. */
  shared: { redis: Redis, keyPrefix: string, syncIntervalMs: number } | undefined
}

/**
 * Fixed-window request counting by client. Without Redis each instance counts alone. With Redis each
 * instance counts in memory and shares its counts in batches every `syncIntervalMs` (a hit costs a map
 * lookup and no Redis command; a client spread over instances can exceed its limit by what they admit
 * between two syncs), or with `syncIntervalMs` 0 on every request (exact, one Redis command each).
 */
export function createRateLimiter (options: RateLimiterOptions): RateLimiter {
  const { windowMs, maxTracked, shared } = options
  const callers = new LocalCounters('caller', windowMs, maxTracked)
  const addresses = new LocalCounters('address', windowMs, maxTracked)
  if (shared === undefined) {
    return { callers: partitionOf(callers, countAlone), addresses: partitionOf(addresses, countAlone), close: async () => {} }
  }
  const counts = new SharedCounts({ redis: shared.redis, keyPrefix: shared.keyPrefix, windowMs, maxQueued: 2 * maxTracked })
  if (shared.syncIntervalMs === 0) {
    const counting = countExactly(counts)
    return { callers: partitionOf(callers, counting, false), addresses: partitionOf(addresses, counting, false), close: async () => {} }
  }
  const timer = setInterval(() => { counts.sync().catch(() => {}) }, shared.syncIntervalMs)
  // Syncing is no reason to keep the process alive; close() sends what is left.
  timer.unref()
  return {
    callers: partitionOf(callers, countInBatches(counts)),
    addresses: partitionOf(addresses, countInBatches(counts)),
    async close () {
      clearInterval(timer)
      await counts.flush()
    },
  }
}

// A refused request is counted once (this instance's count stops at max + 1), so that a client hammering
// while limited costs no more than a lookup, here and in Redis.
type Counting = (counter: WindowCounter, max: number) => WindowCount | Promise<WindowCount>

function partitionOf (counters: LocalCounters, count: Counting, countsWithoutWaiting = true): RateLimitPartition {
  return {
    consume (id, max, nowMs) {
      const counter = counters.current(id, nowMs)
      counter.max = max
      return count(counter, max)
    },
    consumeWithinLimit (id, max, nowMs) {
      if (!countsWithoutWaiting) return undefined
      const counter = counters.current(id, nowMs)
      if (counter.count >= max) return undefined
      counter.max = max
      return count(counter, max) as WindowCount
    },
  }
}

function countAlone (counter: WindowCounter, max: number): WindowCount {
  if (counter.count <= max) counter.count++
  return counter
}

function countInBatches (shared: SharedCounts): Counting {
  return (counter, max) => {
    if (counter.count > max) return counter
    counter.count++
    counter.unsynced++
    if (!counter.queued) shared.queue(counter)
    return counter
  }
}

function countExactly (shared: SharedCounts): Counting {
  return (counter, max) => {
    const over = counter.count > max
    if (!over) {
      counter.count++
      counter.unsynced++
    }
    // Within a window a count only grows: a client known to be over needs no Redis command, unless
    // this instance still holds requests it counted while Redis was away.
    if (over && counter.unsynced === 0) return counter
    return shared.ready ? shared.addNow(counter) : counter
  }
}
