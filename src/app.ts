import Fastify, { type FastifyInstance } from 'fastify'
import { destination, type DestinationStream } from 'pino'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import { errorHandlerPlugin } from './errors/error-handler.js'
import { corsPlugin } from './plugins/cors.js'
import { gracefulClosePlugin } from './plugins/graceful-close.js'
import { phoneListPlugin } from './plugins/phone-list.js'
import { rateLimitPlugin } from './plugins/rate-limit.js'
import { redisPlugin } from './plugins/redis.js'
import { RequestLogController, requestIdOf, requestIdPlugin } from './plugins/request-logging.js'
import { swaggerPlugin } from './plugins/swagger.js'
import { healthRoutes } from './routes/health.js'
import { openApiRoutes } from './routes/openapi.js'
import { tenantPhonesRoutes } from './routes/tenant-phones.js'
import { SERVICE_VERSION } from './version.js'

export interface BuildAppOptions {
  /** Where log lines go; stdout when absent. Tests pass a stream to read them. */
  logStream?: DestinationStream
}

// We never log secrets; these paths are the net under that rule, should a header or config ever be logged.
// Explicit paths only: wildcards make every log line walk the object, on the hot path.
const REDACTED_LOG_PATHS = [
  'sign', 'accessSecret', 'headers.sign', 'req.headers.sign', 'NXCLOUD_ACCESS_SECRET', 'config.NXCLOUD_ACCESS_SECRET',
]

/** Builds the whole service without listening, so tests and the process entry share one wiring. */
export async function buildApp (config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
      // Asynchronous stdout: lines that pile up while one write is in flight go out in the next single write.
      stream: options.logStream ?? destination({ dest: 1, sync: false }),
    },
    logController: new RequestLogController(),
    genReqId: requestIdOf,
    requestIdHeader: false,
    trustProxy: config.TRUST_PROXY,
    // gracefulClosePlugin serves what arrives during close and answers readiness with 503 itself.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>()

  await app.register(errorHandlerPlugin)
  await app.register(requestIdPlugin)
  await app.register(gracefulClosePlugin)
  await app.register(corsPlugin, { origins: parseOrigins(config.CORS_ORIGINS) })
  await app.register(swaggerPlugin, { version: SERVICE_VERSION })
  await app.register(redisPlugin, { url: config.REDIS_URL, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  await app.register(rateLimitPlugin, {
    max: config.RATE_LIMIT_MAX,
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    keyPrefix: config.CACHE_KEY_PREFIX,
  })
  await app.register(phoneListPlugin, {
    nxcloud: {
      baseUrl: config.NXCLOUD_BASE_URL,
      accessKey: config.NXCLOUD_ACCESS_KEY,
      accessSecret: config.NXCLOUD_ACCESS_SECRET,
      timeoutMs: config.NXCLOUD_TIMEOUT_MS,
      connections: config.NXCLOUD_MAX_CONNECTIONS,
    },
    cacheTtlSeconds: config.CACHE_TTL_SECONDS,
    cacheKeyPrefix: config.CACHE_KEY_PREFIX,
    cacheMaxEntries: config.CACHE_MAX_ENTRIES,
  })
  await app.register(healthRoutes)
  await app.register(openApiRoutes)
  await app.register(tenantPhonesRoutes, { cacheTtlSeconds: config.CACHE_TTL_SECONDS })
  return app
}

function parseOrigins (list: string): string[] {
  return list.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
}
