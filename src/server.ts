import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { ApiKeyFileError } from './auth/api-keys.js'
import { ConfigError, loadConfig } from './config.js'
import { startTracing } from './observability/start-tracing.js'
import { listenForScrapes, type MetricsListener } from './metrics/metrics-listener.js'
import { loadEnvFile } from './env-file.js'

// Relative to the working directory, as `npm start` runs it: the project's own `.env`.
const ENV_FILE = '.env'

async function main (): Promise<void> {
  const envFile = loadEnvFile(ENV_FILE, process.env)
  const config = loadConfig(process.env)
  // Tracing patches ioredis as it loads, so the app (and with it ioredis) is imported only after it started.
  const tracing = await startTracing(config)
  const { buildApp } = await import('./app.js')
  const app = await buildApp(config)
  let metricsListener: MetricsListener | undefined
  if (envFile !== undefined) app.log.info({ envFile }, 'configuration: read the .env file; variables set in the environment kept their values')

  // Only SIGTERM, the orchestrator's signal (Kubernetes, Docker, systemd), drains: a load balancer may still
  // route here. Another signal is someone at a terminal, and after an unhandled error serving on is a risk.
  closeWithGrace({ delay: config.SHUTDOWN_DRAIN_DELAY_MS + config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an unhandled error')
    else if (signal === 'SIGTERM') await drain(app, signal, config.SHUTDOWN_DRAIN_DELAY_MS)
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
    await tracing?.shutdown()
    // Last, so that the drain and the close can still be watched.
    await metricsListener?.close()
  })

  // Before the public listener: a metrics port already taken stops the process before it takes traffic.
  if (config.METRICS_PORT === 0) app.log.info('metrics listener off (METRICS_PORT=0)')
  else metricsListener = await listenForScrapes(app.metrics.registry, { host: config.HOST, port: config.METRICS_PORT, log: app.log })
  await app.listen({ port: config.PORT, host: config.HOST })
}

/**
 * Kubernetes sends SIGTERM while it removes the pod from its endpoints, and the load balancers learn of
 * it only later: requests keep arriving meanwhile, over new connections and kept-alive ones. So the
 * listener goes on serving them for `delayMs`, readiness failing and every answer closing its
 * connection, and only then does `close()` stop accepting and end the idle sockets, by then unused.
 */
async function drain (app: FastifyInstance, signal: string, delayMs: number): Promise<void> {
  app.beginShutdown()
  app.log.info({ signal, drainDelayMs: delayMs }, 'shutting down: draining, readiness fails while requests are still served')
  await sleep(delayMs)
  app.log.info('shutting down: the listener stops, finishing in-flight requests')
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof ApiKeyFileError) {
    process.stderr.write(`${error.message}\n`)
  } else {
    process.stderr.write(`nxcloud-bff failed to start: ${error instanceof Error ? error.stack : String(error)}\n`)
  }
  process.exit(1)
})
