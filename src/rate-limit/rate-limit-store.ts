import type { Redis, Result } from 'ioredis'
import { LocalCounters, type WindowCount } from './local-counters.js'

// INCR, and start the window on the first request of it. A counter left without expiry (it cannot
// happen through this script, but a manual write could do it) gets one rather than limiting forever.
const INCREMENT_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[1])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  local remaining = redis.call('PTTL', KEYS[1])
  if remaining < 0 then redis.call('PEXPIRE', KEYS[1], ttl) else ttl = remaining end
end
return {current, ttl}`

const COUNTER_KEY = 'rate-limit:v1:'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    incrementRateLimit (key: string, windowMs: number): Result<[number, number], Context>
  }
}

type StoreCallback = (error: Error | null, result?: WindowCount) => void

/** The shape @fastify/rate-limit expects of a `store` class. */
export interface RateLimitStore {
  incr (key: string, callback: StoreCallback, windowMs: number, max: number): void
  read (key: string, callback: StoreCallback, windowMs: number, max: number): void
  child (): RateLimitStore
}

export interface RateLimitStoreOptions {
  redis: Redis | undefined
  keyPrefix: string
  maxTrackedLocally: number
}

/**
 * Counters shared through Redis when it is configured, with this process's own counters kept
 * alongside: when Redis fails or is disconnected, each instance goes on limiting with what it
 * counted itself, instead of letting everyone through.
 */
export function createRateLimitStore (options: RateLimitStoreOptions): new () => RateLimitStore {
  const { redis } = options
  const local = new LocalCounters(options.maxTrackedLocally)
  redis?.defineCommand('incrementRateLimit', { numberOfKeys: 1, lua: INCREMENT_SCRIPT })
  const redisKey = (key: string) => `${options.keyPrefix}${COUNTER_KEY}${key}`

  const store: RateLimitStore = {
    incr (key, callback, windowMs, max) {
      const counted = local.increment(key, windowMs, max)
      if (redis === undefined || redis.status !== 'ready') {
        callback(null, counted)
        return
      }
      redis.incrementRateLimit(redisKey(key), windowMs).then(
        ([current, ttl]) => { callback(null, { current, ttl }) },
        () => { callback(null, counted) }
      )
    },
    read (key, callback) {
      callback(null, local.read(key))
    },
    child: () => store,
  }
  // @fastify/rate-limit instantiates the class it is given; every instance is this one store.
  return function SharedStore () { return store } as unknown as new () => RateLimitStore
}
