import fp from 'fastify-plugin'
import { createMetrics, type Metrics } from '../metrics/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The Prometheus series; served by the metrics listener the process starts (METRICS_PORT). */
    metrics: Metrics
  }
}

/**
 * The app's metrics, for the plugins that record into them (access, rate limit, phone list) and the
 * access log. Recording adds no hook: each records where its fact is decided.
 */
export const metricsPlugin = fp(async function metrics (app) {
  app.decorate('metrics', createMetrics({ redis: app.redis }))
}, { name: 'metrics', dependencies: ['redis'] })
