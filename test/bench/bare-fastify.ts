/**
 * The benchmark's baseline: a bare Fastify route answering the same bytes the BFF answers on a cache hit,
 * with nothing else (no logging, no limiter, no validation). Run as a child process by run-bench.ts.
 */
import Fastify from 'fastify'

const payload = process.env['BENCH_PAYLOAD'] ?? '{}'
const app = Fastify({ logger: false })
app.get('/tenants/:appkey/phones', async (_request, reply) => reply.type('application/json; charset=utf-8').send(payload))
await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
