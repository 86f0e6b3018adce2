import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { ProblemError } from '../errors/problem-error.js'
import { createRateLimitStore } from '../rate-limit/rate-limit-store.js'

export interface RateLimitPluginOptions {
  max: number
  windowMs: number
  keyPrefix: string
}

// Counters this process keeps (callers under their limit are dropped first when it is full).
const MAX_TRACKED_CLIENTS = 100_000

/**
 * Per-caller limit: by caller id once authenticated (a key may carry its own `rateLimitMax`), by
 * address otherwise, so failed authentications count against the address they come from. With
 * Redis the count is shared by every instance; without it, each instance limits on its own.
 */
export const rateLimitPlugin = fp<RateLimitPluginOptions>(async function rateLimiting (app, options) {
  await app.register(rateLimit, {
    global: true,
    max: (request: FastifyRequest) => request.caller?.rateLimitMax ?? options.max,
    timeWindow: options.windowMs,
    keyGenerator: rateLimitKeyOf,
    store: createRateLimitStore({ redis: app.redis, keyPrefix: options.keyPrefix, maxTrackedLocally: MAX_TRACKED_CLIENTS }),
    onExceeded: (request) => { app.metrics.rateLimited(request.caller === undefined ? 'address' : 'caller') },
    errorResponseBuilder: (_request, context) =>
      new ProblemError('rateLimited', `Rate limit of ${context.max} requests exceeded; retry in ${context.after}`),
  })
}, { name: 'rate-limit', dependencies: ['redis', 'access', 'metrics'] })

function rateLimitKeyOf (request: FastifyRequest): string {
  return request.caller === undefined ? `address:${request.ip}` : `caller:${request.caller.id}`
}
