/**
 * What the benchmark's baseline processes share (bare-fastify.ts, conventional-fastify.ts, probe-fastify.ts): the answer
 * they serve, which the bench captured from a real cache hit of the service, and the way they listen and
 * stop. Both serve the service's exact body and header fields, so that every row writes the same bytes.
 */
import type { RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'

/** The service's route, as the baselines register it. */
export const BASELINE_ROUTE = '/tenants/:appkey/phones'

/** The environment variable the bench hands the captured answer over in, as JSON. */
export const HIT_ANSWER_ENV = 'BENCH_HIT_ANSWER'

export interface HitAnswer {
  body: string
  /**
   * Every header field of the service's hit but those Node writes itself (Date, Connection, Keep-Alive,
   * Content-Length). Per-request values (X-Request-Id, Age, RateLimit) stay as captured: same length.
   */
  headers: Record<string, string>
}

// One load generator is one caller: the limiter counts every request but must never refuse one.
const RATE_LIMIT_MAX = 1_000_000_000
const RATE_LIMIT_WINDOW_MS = 60_000

/** `@fastify/rate-limit` as the conventional build and the probe use it: its memory store, counting per API key. */
export const BASELINE_RATE_LIMIT: RateLimitPluginOptions = {
  max: RATE_LIMIT_MAX,
  timeWindow: RATE_LIMIT_WINDOW_MS,
  keyGenerator: (request) => String(request.headers['x-api-key'] ?? request.ip),
  // The contract's RateLimit fields come with the captured headers; the plugin's X-RateLimit-* would be extra bytes.
  addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': false },
  addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
}

export function readHitAnswer (): HitAnswer {
  const json = process.env[HIT_ANSWER_ENV]
  if (json === undefined) throw new Error(`${HIT_ANSWER_ENV} is not set: the bench starts this process`)
  return JSON.parse(json) as HitAnswer
}

/** Listens on PORT at loopback; SIGTERM closes the server and ends the process. */
export async function serveUntilTerminated (app: FastifyInstance): Promise<void> {
  await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1' })
  process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
