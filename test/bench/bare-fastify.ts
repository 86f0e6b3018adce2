/**
 * The benchmark's floor: a bare Fastify route answering the service's hit (the same body and header
 * fields, set per request), with nothing else (no logger, no limiter, no authentication, no validation).
 * Run as a child process by the bench (hit-rows.ts).
 */
import Fastify from 'fastify'
import { BASELINE_ROUTE, readHitAnswer, serveUntilTerminated } from './baseline-server.js'

const answer = readHitAnswer()
const app = Fastify({ logger: false })
app.get(BASELINE_ROUTE, (_request, reply) => { reply.headers(answer.headers).send(answer.body) })
await serveUntilTerminated(app)
