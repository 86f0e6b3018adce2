import type { RedisClient } from '../redis/redis-client.js'
import type { RedisHealthGate } from '../redis/redis-health-gate.js'
import { SharedCounts } from './shared-counts.js'
import { WindowCounters, type WindowCount, type WindowCounter } from './window-counters.js'

/** What a @fastify/rate-limit store answers for a key: its count in the window, this request included, and the ms left. */
export interface StoreAnswer {
  current: number
  ttl: number
}

export type StoreCallback = (error: Error | null, answer?: StoreAnswer) => void

/** @fastify/rate-limit's store interface (its `store` option), as this service implements it. */
export interface RateLimitStore {
  incr (key: string, callback: StoreCallback, timeWindow: number, max: number): void
  /** The store of a route with a rate limit of its own: its own counters, under a namespace. */
  child (routeOptions: RouteRateLimitOptions): RateLimitStore
}

/** What @fastify/rate-limit hands `child()`: the route's merged options, with the route itself. */
interface RouteRateLimitOptions {
  url?: string
  routeInfo?: { method?: string | string[], url?: string }
}

export interface CountingStoreOptions {
  /** Bound of the counters kept in this process (see WindowCounters). */
  maxTracked: number
  /** Counts shared by every instance through Redis; undefined: this instance limits on its own. */
  shared: { redis: RedisClient, gate: RedisHealthGate, keyPrefix: string, syncIntervalMs: number } | undefined
  /** The clock windows are measured by (tests pass a fake one). */
  now?: () => number
}

export interface CountingStore {
  /** The class for @fastify/rate-limit's `store` option: the plugin makes the instance. */
  readonly Store: new (pluginOptions: unknown) => RateLimitStore
  /** Stops syncing and sends the counts not yet shared. */
  close (): Promise<void>
}

// A refused request is counted once (this instance's count stops at max + 1), so that a client hammering
// while limited costs no more than a lookup, here and in Redis.
type Counting = (counter: WindowCounter, max: number) => WindowCount | Promise<WindowCount>

/**
 * Fixed-window request counting by key, for @fastify/rate-limit. Without Redis each instance counts
 * alone. With Redis each instance counts in memory and shares its counts in batches every
 * `syncIntervalMs` (a request costs a map lookup and no Redis command; a client spread over instances
 * can exceed its limit by what they admit between two syncs), or with `syncIntervalMs` 0 on every
 * request (exact, one Redis command each). A Redis that fails never fails a request: the count goes on
 * in this process and reaches Redis once it is back.
 */
export function createCountingStore (options: CountingStoreOptions): CountingStore {
  const { shared, now = () => Date.now() } = options
  const counters = new WindowCounters(options.maxTracked)
  let count: Counting = countAlone
  let close = async (): Promise<void> => {}
  if (shared !== undefined) {
    const sharedCounts = new SharedCounts({ redis: shared.redis, gate: shared.gate, keyPrefix: shared.keyPrefix, maxQueued: 2 * options.maxTracked })
    if (shared.syncIntervalMs === 0) {
      count = countExactly(sharedCounts)
    } else {
      count = countInBatches(sharedCounts)
      const timer = setInterval(() => { sharedCounts.sync().catch(() => {}) }, shared.syncIntervalMs)
      // Syncing is no reason to keep the process alive; close() sends what is left.
      timer.unref()
      close = async () => {
        clearInterval(timer)
        await sharedCounts.flush()
      }
    }
  }

  class Store implements RateLimitStore {
    constructor (_pluginOptions: unknown, private readonly namespace = '') {}

    incr (key: string, callback: StoreCallback, timeWindow: number, max: number): void {
      const nowMs = now()
      const counter = counters.current(this.namespace + key, nowMs, timeWindow)
      counter.max = max
      const counted = count(counter, max)
      if (counted instanceof Promise) counted.then((settled) => { callback(null, answerOf(settled, now())) }, callback)
      else callback(null, answerOf(counted, nowMs))
    }

    child (routeOptions: RouteRateLimitOptions): RateLimitStore {
      const { method = '', url = '' } = routeOptions.routeInfo ?? {}
      return new Store(routeOptions, `${this.namespace}${String(method)} ${url}|`)
    }
  }

  return { Store, close: () => close() }
}

function answerOf (counted: WindowCount, nowMs: number): StoreAnswer {
  return { current: counted.count, ttl: Math.max(0, counted.windowEndsAtMs - nowMs) }
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
