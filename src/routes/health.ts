import Type, { type Static } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

const LivenessSchema = Type.Object({ status: Type.Literal('ok') })

const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('shutting-down')], {
    description: '`degraded`: serving, but Redis is unreachable, so each instance caches nothing and limits alone.',
  }),
  checks: Type.Object({
    redis: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('not-configured')]),
  }),
})

type Readiness = Static<typeof ReadinessSchema>

const operations = { tags: ['operations'] }
const unlimited = { rateLimit: false } as const

/** Probes for the orchestrator: liveness touches nothing; readiness reports each dependency. */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    config: unlimited,
    // Probed every few seconds: its answers are not logged at info, its warnings and errors still are.
    logLevel: 'warn',
    schema: { ...operations, summary: 'Liveness', response: { 200: LivenessSchema } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    config: unlimited,
    schema: {
      ...operations,
      summary: 'Readiness',
      description: 'A Redis outage degrades but does not fail readiness: the service keeps answering through NxCloud.',
      response: { 200: ReadinessSchema, 503: ReadinessSchema },
    },
  }, async (_request, reply) => {
    const redis = await redisState(app.redis)
    const shuttingDown = app.isShuttingDown()
    const readiness: Readiness = {
      status: shuttingDown ? 'shutting-down' : redis === 'down' ? 'degraded' : 'ready',
      checks: { redis },
    }
    return reply.code(shuttingDown ? 503 : 200).send(readiness)
  })
}

async function redisState (redis: import('ioredis').Redis | undefined): Promise<Readiness['checks']['redis']> {
  if (redis === undefined) return 'not-configured'
  try {
    await redis.ping()
    return 'up'
  } catch {
    return 'down'
  }
}
