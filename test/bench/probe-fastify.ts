/**
 * The benchmark's probe: issue 14's estimate of what the framework's own means reach, answering the
 * service's hit. Fastify with one pino line per request from an `onResponse` hook (Fastify's two request
 * lines off, pino's default destination), `@fastify/rate-limit` (memory store) on `onRequest`, the
 * `X-API-Key` looked up in a Map (401 otherwise), and the list's bytes made once. Run as a child process
 * by the bench (hit-rows.ts), which gives it the key in BENCH_API_KEY.
 */
import rateLimit from '@fastify/rate-limit'
import Fastify, { LogController } from 'fastify'
import { BASELINE_RATE_LIMIT, BASELINE_ROUTE, readHitAnswer, serveUntilTerminated } from './baseline-server.js'

const answer = readHitAnswer()
const callers = new Map([[process.env['BENCH_API_KEY'] ?? '', { id: 'bench' }]])

const app = Fastify({ logger: true, logController: new LogController({ disableRequestLogging: true }) })
await app.register(rateLimit, BASELINE_RATE_LIMIT)
app.addHook('onRequest', (request, reply, done) => {
  const apiKey = request.headers['x-api-key']
  if (typeof apiKey !== 'string' || !callers.has(apiKey)) {
    reply.code(401).send({ message: 'unknown API key' })
    return
  }
  done()
})
app.addHook('onResponse', (request, reply, done) => {
  request.log.info({ method: request.method, url: request.url, statusCode: reply.statusCode, responseTimeMs: reply.elapsedTime }, 'request completed')
  done()
})
app.get(BASELINE_ROUTE, (_request, reply) => {
  reply.headers(answer.headers).send(answer.body)
})
await serveUntilTerminated(app)
