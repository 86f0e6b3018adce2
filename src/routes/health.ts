import Type, { type Static } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EVERY_OPERATION_PROBLEM_STATUSES, problemResponses } from '../errors/problem-schema.js'
import { jsonResponse } from '../http/responses.js'
import { NO_SECURITY } from '../auth/openapi-security.js'
import { pingRedis, type RedisClient } from '../redis/redis-client.js'
import type { RedisHealthGate } from '../redis/redis-health-gate.js'

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

const operations = { tags: ['operations'], security: NO_SECURITY }
const unlimited = { rateLimit: false } as const

/** Probes for the orchestrator: liveness touches nothing; readiness reports each dependency. */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    config: unlimited,
    // Probed every few seconds: its answers are not logged at info, its warnings and errors still are.
    logLevel: 'warn',
    schema: {
      ...operations,
      operationId: 'getLiveness',
      summary: 'Liveness',
      description: 'Answers as long as the process serves requests; touches no dependency. Not rate limited.',
      response: {
        200: jsonResponse('The process is alive.', LivenessSchema, { alive: { status: 'ok' } }),
        ...problemResponses(EVERY_OPERATION_PROBLEM_STATUSES, { examplePath: '/healthz' }),
      },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    config: unlimited,
    schema: {
      ...operations,
      operationId: 'getReadiness',
      summary: 'Readiness',
      description: 'Whether this instance should receive traffic, with the state of each dependency. A Redis outage ' +
        'degrades but does not fail readiness: the service keeps answering through NxCloud. Not rate limited.',
      response: {
        200: jsonResponse('Ready, or degraded but serving.', ReadinessSchema, {
          ready: { status: 'ready', checks: { redis: 'up' } } satisfies Readiness,
          degraded: { status: 'degraded', checks: { redis: 'down' } } satisfies Readiness,
        }),
        503: jsonResponse('Shutting down: send traffic elsewhere.', ReadinessSchema, {
          'shutting-down': { status: 'shutting-down', checks: { redis: 'up' } } satisfies Readiness,
        }),
        ...problemResponses(EVERY_OPERATION_PROBLEM_STATUSES, { examplePath: '/readyz' }),
      },
    },
  }, async (_request, reply) => {
    const redis = await redisState(app.redis, app.redisGate)
    const shuttingDown = app.isShuttingDown()
    const readiness: Readiness = {
      status: shuttingDown ? 'shutting-down' : redis === 'down' ? 'degraded' : 'ready',
      checks: { redis },
    }
    return reply.code(shuttingDown ? 503 : 200).send(readiness)
  })
}

// Through the health gate: a Redis already seen failing is down at once, without waiting on it.
async function redisState (redis: RedisClient | undefined, gate: RedisHealthGate | undefined): Promise<Readiness['checks']['redis']> {
  if (redis === undefined || gate === undefined) return 'not-configured'
  try {
    await gate.run(() => pingRedis(redis))
    return 'up'
  } catch {
    return 'down'
  }
}
