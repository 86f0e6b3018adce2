import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../metrics/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The Prometheus series; served by the metrics listener the process starts (METRICS_PORT). */
    metrics: Metrics
  }
}

/**
 * The app's metrics, for the plugins that record into them (access, rate limit, phone list), and every
 * answered request's duration from an onResponse hook, whatever the logging does.
 */
export const metricsPlugin = fp(async function metrics (app) {
  const metrics = createMetrics({ redisGate: app.redisGate })
  app.decorate('metrics', metrics)
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request, reply)
    done()
  })
}, { name: 'metrics', dependencies: ['redis'] })
