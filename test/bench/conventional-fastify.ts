/**
 * The benchmark's conventional build: what the named stack gives when used the plain way, answering the
 * service's hit (the same body and header fields). Fastify's default request logging (pino at info: an
 * "incoming request" and a "request completed" line per request, to stdout through pino's default
 * destination), `@fastify/rate-limit` with its memory store counting per API key, the `X-API-Key` looked up
 * in a Map (401 otherwise), and the phone list kept as an object that Fastify serialises per request.
 * Run as a child process by the bench (hit-rows.ts), which gives it the key in BENCH_API_KEY.
 */
import rateLimit from '@fastify/rate-limit'
import Fastify from 'fastify'
import { BASELINE_RATE_LIMIT, BASELINE_ROUTE, readHitAnswer, serveUntilTerminated } from './baseline-server.js'

const answer = readHitAnswer()
const phoneList: unknown = JSON.parse(answer.body)
const callers = new Map([[process.env['BENCH_API_KEY'] ?? '', { id: 'bench' }]])

const app = Fastify({ logger: true })
await app.register(rateLimit, BASELINE_RATE_LIMIT)
app.addHook('onRequest', async (request, reply) => {
  const apiKey = request.headers['x-api-key']
  if (typeof apiKey !== 'string' || !callers.has(apiKey)) return reply.code(401).send({ message: 'unknown API key' })
})
app.get(BASELINE_ROUTE, async (_request, reply) => {
  reply.headers(answer.headers)
  return phoneList
})
await serveUntilTerminated(app)
