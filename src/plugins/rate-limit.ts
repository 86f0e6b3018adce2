import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import { ProblemError } from '../errors/problem-error.js'

export interface RateLimitPluginOptions {
  max: number
  windowMs: number
  keyPrefix: string
}

/**
 * Per-client limit (by address; see TRUST_PROXY). With Redis the count is shared by every instance;
 * when Redis fails the limiter lets requests through rather than fail them (`skipOnError`).
 */
export const rateLimitPlugin = fp<RateLimitPluginOptions>(async function rateLimiting (app, options) {
  await app.register(rateLimit, {
    global: true,
    max: options.max,
    timeWindow: options.windowMs,
    skipOnError: true,
    nameSpace: `${options.keyPrefix}rate-limit:`,
    ...(app.redis === undefined ? {} : { redis: app.redis }),
    errorResponseBuilder: (_request, context) =>
      new ProblemError('rateLimited', `Rate limit of ${context.max} requests exceeded; retry in ${context.after}`),
  })
}, { name: 'rate-limit', dependencies: ['redis'] })
