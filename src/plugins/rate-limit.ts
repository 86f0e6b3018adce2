import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import type { FastifyReply, onRequestHookHandler } from 'fastify'
import { ProblemError } from '../errors/problem-error.js'
import { HttpHeaders } from '../http/headers.js'
import { RateLimitPolicies, serviceLimitFieldValue } from '../rate-limit/rate-limit-fields.js'
import { createRateLimiter, type RateLimiter, type RateLimitPartition } from '../rate-limit/rate-limiter.js'
import type { WindowCount } from '../rate-limit/local-counters.js'
import type { RateLimitedReason } from '../metrics/metrics.js'
import type { AfterAuthentication } from './access.js'
import type { Caller } from '../auth/caller.js'

declare module 'fastify' {
  interface FastifyInstance {
    rateLimiter: RateLimiter
    /** Counts a known caller's request when it is within the limit (see `CallerAdmission`). */
    admitCaller: CallerAdmission
  }
  interface FastifyContextConfig {
    /** `false`: the route is not limited (probes). A protected route (`access`) always is. */
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
 * address they come from. On a protected route the access guard runs it between authentication and
 * authorization (no hook of its own); on the others it is one onRequest hook. With Redis the counts
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
  // One table of RateLimit-Policy values for the guard's check and the hit lane's admission.
  const policies = new RateLimitPolicies(options.windowMs)
  app.decorate('admitCaller', createCallerAdmission(limiter, policies, options.max))
  // Registered after Redis, so closed before it: the counts not yet shared still reach it.
  app.addHook('onClose', async () => { await limiter.close() })

  const limitRequest = createRateLimitCheck(limiter, { max: options.max, policies, onRefused: (reason) => { app.metrics.rateLimited(reason) } })
  app.afterAuthentication = limitRequest
  const limitRate: onRequestHookHandler = function limitRate (request, reply, done) {
    const limited = limitRequest(request, reply)
    if (limited instanceof Promise) limited.then(done, done)
    else done(limited)
  }
  app.addHook('onRoute', (route) => {
    if (route.config?.rateLimit === false || app.guardsRoute(route.config)) return
    route.onRequest = [...[route.onRequest ?? []].flat(), limitRate]
  })
}, { name: 'rate-limit', dependencies: ['redis', 'access', 'metrics'] })

export interface RateLimitCheckOptions {
  max: number
  /** The RateLimit-Policy values, by limit. */
  policies: RateLimitPolicies
  /** Told of each 429, with what the limit counted (metrics). */
  onRefused: (reason: RateLimitedReason) => void
}

/**
 * Counts a request and writes RateLimit-Policy and RateLimit; past the limit, answers the 429 problem
 * to hand to `done`. Synchronous, except in exact shared mode (RATE_LIMIT_SYNC_MS=0).
 */
export function createRateLimitCheck (limiter: RateLimiter, options: RateLimitCheckOptions): AfterAuthentication {
  const { policies } = options
  const defaultPolicy = policies.fieldValueFor(options.max)

  function answer (reply: FastifyReply, counted: WindowCount, max: number, reason: RateLimitedReason, nowMs: number): ProblemError | undefined {
    const resetSeconds = resetSecondsOf(counted, nowMs)
    const limited = counted.count > max
    reply.header(HttpHeaders.rateLimitPolicy.name, max === options.max ? defaultPolicy : policies.fieldValueFor(max))
    reply.header(HttpHeaders.rateLimit.name, serviceLimitFieldValue(limited ? 0 : max - counted.count, resetSeconds))
    if (!limited) return undefined
    options.onRefused(reason)
    return new ProblemError('rateLimited', `Rate limit of ${max} requests exceeded; retry in ${resetSeconds} s`, {
      headers: { [HttpHeaders.retryAfter.name]: resetSeconds },
    })
  }

  function count (reply: FastifyReply, partition: RateLimitPartition, id: string, max: number, reason: RateLimitedReason): ReturnType<AfterAuthentication> {
    const nowMs = Date.now()
    const counted = partition.consume(id, max, nowMs)
    return counted instanceof Promise
      ? counted.then((settled) => answer(reply, settled, max, reason, Date.now()))
      : answer(reply, counted, max, reason, nowMs)
  }

  return function limitRequest (request, reply) {
    const admitted = admittedBefore(request.raw)
    if (admitted !== undefined) {
      reply.header(HttpHeaders.rateLimitPolicy.name, admitted.policy)
      reply.header(HttpHeaders.rateLimit.name, admitted.limit)
      return undefined
    }
    const caller = request.caller
    const max = caller?.rateLimitMax ?? options.max
    return caller === undefined
      ? count(reply, limiter.addresses, request.ip, max, 'address')
      : count(reply, limiter.callers, caller.id, max, 'caller')
  }
}

// Whole seconds, rounded up: a client that waits `t` finds its window over.
function resetSecondsOf (counted: WindowCount, nowMs: number): number {
  return Math.max(0, Math.ceil((counted.windowEndsAtMs - nowMs) / 1000))
}

/** The values of RateLimit-Policy and RateLimit for an admitted request. */
export interface RateLimitFieldValues {
  policy: string
  limit: string
}

/**
 * For answers given outside Fastify (the hit lane): counts the caller's request only when it is within
 * the limit and countable at once, and answers the fields to send; undefined otherwise, nothing counted,
 * for the guard's `createRateLimitCheck` to count and refuse. A request is counted once either way.
 */
export type CallerAdmission = (caller: Caller, nowMs: number) => RateLimitFieldValues | undefined

function createCallerAdmission (limiter: RateLimiter, policies: RateLimitPolicies, defaultMax: number): CallerAdmission {
  return (caller, nowMs) => {
    const max = caller.rateLimitMax ?? defaultMax
    const counted = limiter.callers.consumeWithinLimit(caller.id, max, nowMs)
    if (counted === undefined) return undefined
    return { policy: policies.fieldValueFor(max), limit: serviceLimitFieldValue(max - counted.count, resetSecondsOf(counted, nowMs)) }
  }
}

const ADMITTED = Symbol('admitted')

interface AdmittedRequest extends IncomingMessage {
  [ADMITTED]?: RateLimitFieldValues
}

/** Records that the hit lane counted this request, which it then leaves to the route. */
export function markAdmitted (request: IncomingMessage, fields: RateLimitFieldValues): void {
  (request as AdmittedRequest)[ADMITTED] = fields
}

function admittedBefore (request: IncomingMessage): RateLimitFieldValues | undefined {
  return (request as AdmittedRequest)[ADMITTED]
}
