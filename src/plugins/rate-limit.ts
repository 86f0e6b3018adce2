import fp from 'fastify-plugin'
import fastifyRateLimit, { normalizeIP } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { ProblemError } from '../errors/problem-error.js'
import { createCountingStore } from '../rate-limit/counting-store.js'

export interface RateLimitPluginOptions {
  max: number
  windowMs: number
  keyPrefix: string
  /** How often counts are shared through Redis; 0: on every request. */
  syncIntervalMs: number
}

// Counters this process keeps (callers under their limit are dropped first when it is full).
const MAX_TRACKED_CLIENTS = 100_000
const MS_PER_SECOND = 1000

/**
 * @fastify/rate-limit on every route that does not opt out (`config: { rateLimit: false }`: the probes),
 * in its default onRequest hook. It counts by caller id once authenticated (a key may carry its own
 * `rateLimitMax`), by address otherwise, so failed authentications count against the address they come
 * from: on a protected route the access plugin, registered after this one, puts its onRequest hook
 * identifying the caller before this one and its verdict after it (plugins/access.ts). The counts live in a store of our own
 * (rate-limit/counting-store.ts): in process, shared by every instance through Redis in batches.
 * Answers carry the plugin's RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset fields, and a
 * 429 its Retry-After.
 */
export const rateLimitPlugin = fp<RateLimitPluginOptions>(async function rateLimiting (app, options) {
  const counting = createCountingStore({
    maxTracked: MAX_TRACKED_CLIENTS,
    shared: app.redis === undefined || app.redisGate === undefined
      ? undefined
      : { redis: app.redis, gate: app.redisGate, keyPrefix: options.keyPrefix, syncIntervalMs: options.syncIntervalMs },
  })
  // Registered after Redis, so closed before it: the counts not yet shared still reach it.
  app.addHook('onClose', async () => { await counting.close() })

  await app.register(fastifyRateLimit, {
    store: counting.Store,
    timeWindow: options.windowMs,
    max: (request: FastifyRequest) => request.caller?.rateLimitMax ?? options.max,
    keyGenerator: keyOf,
    enableDraftSpec: true,
    onExceeded: (request: FastifyRequest) => { app.metrics.rateLimited(request.caller === undefined ? 'address' : 'caller') },
    errorResponseBuilder: (_request, { max, ttl }) =>
      new ProblemError('rateLimited', `Rate limit of ${max} requests exceeded; retry in ${Math.ceil(ttl / MS_PER_SECOND)} s`),
  })
}, { name: 'rate-limit', dependencies: ['redis', 'metrics'] })

// Caller ids (`key:…`, `jwt:…`) and addresses (IPv6 grouped by /64, the plugin's default) never coincide.
function keyOf (request: FastifyRequest): string {
  return request.caller?.id ?? normalizeIP(request.ip)
}
