import fp from 'fastify-plugin'
import type { FastifyReply, onRequestHookHandler } from 'fastify'
import { ProblemError } from '../errors/problem-error.js'
import { RateLimitHeaders, RateLimitPolicies, serviceLimitFieldValue } from '../rate-limit/rate-limit-fields.js'
import { createRateLimiter, type RateLimiter } from '../rate-limit/rate-limiter.js'
import type { WindowCount } from '../rate-limit/local-counters.js'

declare module 'fastify' {
  interface FastifyInstance {
    rateLimiter: RateLimiter
  }
  interface FastifyContextConfig {
    /** `false`: the route is not limited (probes). */
    rateLimit?: false
  }
}

export interface RateLimitPluginOptions {
  max: number
  windowMs: number
  keyPrefix: string
  /** How often counts are shared through Redis; 0: on every request. */
  syncIntervalMs: number
}

// Counters this process keeps per partition (callers under their limit are dropped first when it is full).
const MAX_TRACKED_CLIENTS = 100_000

/**
 * Per-client limit on every route that does not opt out: by caller id once authenticated (a key may
 * carry its own `rateLimitMax`), by address otherwise, so failed authentications count against the
 * address they come from. One synchronous onRequest hook after authentication; with Redis the counts
 * are shared by every instance, without it each instance limits on its own.
 */
export const rateLimitPlugin = fp<RateLimitPluginOptions>(async function rateLimiting (app, options) {
  const limiter = createRateLimiter({
    windowMs: options.windowMs,
    maxTracked: MAX_TRACKED_CLIENTS,
    shared: app.redis === undefined
      ? undefined
      : { redis: app.redis, keyPrefix: options.keyPrefix, syncIntervalMs: options.syncIntervalMs },
  })
  app.decorate('rateLimiter', limiter)
  // Registered after Redis, so closed before it: the counts not yet shared still reach it.
  app.addHook('onClose', async () => { await limiter.close() })

  const limitRate = createRateLimitHook(limiter, options)
  app.addHook('onRoute', (route) => {
    if (route.config?.rateLimit === false) return
    // After the access plugin's authentication hook, which it put first: the caller is known here.
    route.onRequest = [...[route.onRequest ?? []].flat(), limitRate]
  })
}, { name: 'rate-limit', dependencies: ['redis', 'access', 'metrics'] })

/**
 * The limiter as one hook, callable as a plain function too (from another onRequest hook, to save one):
 * counts the request, writes RateLimit-Policy and RateLimit, and refuses past the limit with 429.
 */
export function createRateLimitHook (limiter: RateLimiter, options: { max: number, windowMs: number }): onRequestHookHandler {
  const policies = new RateLimitPolicies(options.windowMs)
  const defaultPolicy = policies.fieldValueFor(options.max)

  return function limitRate (request, reply, done) {
    const caller = request.caller
    const max = caller?.rateLimitMax ?? options.max
    const policy = max === options.max ? defaultPolicy : policies.fieldValueFor(max)
    const nowMs = Date.now()
    const counted = caller === undefined
      ? limiter.addresses.consume(request.ip, max, nowMs)
      : limiter.callers.consume(caller.id, max, nowMs)
    if (counted instanceof Promise) {
      counted.then((count) => { answer(reply, count, max, policy, Date.now(), done) }, done)
      return
    }
    answer(reply, counted, max, policy, nowMs, done)
  }
}

function answer (reply: FastifyReply, counted: WindowCount, max: number, policy: string, nowMs: number, done: (error?: Error) => void): void {
  // Whole seconds, rounded up: a client that waits `t` finds its window over.
  const resetSeconds = Math.max(0, Math.ceil((counted.windowEndsAtMs - nowMs) / 1000))
  const limited = counted.count > max
  reply.header(RateLimitHeaders.policy, policy)
  reply.header(RateLimitHeaders.serviceLimit, serviceLimitFieldValue(limited ? 0 : max - counted.count, resetSeconds))
  if (!limited) {
    done()
    return
  }
  done(new ProblemError('rateLimited', `Rate limit of ${max} requests exceeded; retry in ${resetSeconds} s`, {
    headers: { [RateLimitHeaders.retryAfter]: resetSeconds },
  }))
}
