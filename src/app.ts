import Fastify, { type FastifyInstance } from 'fastify'
import { destination, type DestinationStream } from 'pino'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config, TrustProxy } from './config.js'
import { errorHandlerPlugin } from './errors/error-handler.js'
import { accessPlugin, type AccessPluginOptions } from './plugins/access.js'
import { corsPlugin } from './plugins/cors.js'
import { answerStampPlugin } from './plugins/answer-stamp.js'
import { phoneListPlugin } from './plugins/phone-list.js'
import { rateLimitPlugin } from './plugins/rate-limit.js'
import { redisPlugin } from './plugins/redis.js'
import { lazyChildLogger, RequestLogController, requestIdOf } from './plugins/request-logging.js'
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
  const app = createFastify(config, options)
  try {
    await registerPlugins(app, config)
  } catch (error) {
    // Plugins registered before the failure may hold connections (Redis) that would keep the process alive.
    await app.close().catch(() => {})
    throw error
  }
  return app
}

function createFastify (config: Config, options: BuildAppOptions) {
  return Fastify({
    logger: {
      level: config.LOG_LEVEL,
      redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
      stream: options.logStream ?? bufferedStdout(),
    },
    logController: new RequestLogController(),
    childLoggerFactory: lazyChildLogger,
    genReqId: requestIdOf,
    requestIdHeader: false,
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    // answerStampPlugin serves what arrives during close; /readyz answers 503 itself.
    return503OnClosing: false,
  }).withTypeProvider<TypeBoxTypeProvider>()
}

type App = ReturnType<typeof createFastify>

async function registerPlugins (app: App, config: Config): Promise<void> {
  await app.register(errorHandlerPlugin)
  await app.register(answerStampPlugin)
  await app.register(corsPlugin, { origins: parseOrigins(config.CORS_ORIGINS) })
  await app.register(swaggerPlugin, { version: SERVICE_VERSION })
  await app.register(redisPlugin, { url: config.REDIS_URL, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  await app.register(accessPlugin, accessOptionsOf(config))
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
      protection: {
        maxConcurrency: config.NXCLOUD_MAX_CONCURRENCY,
        maxQueue: config.NXCLOUD_MAX_QUEUE,
        maxAttempts: config.NXCLOUD_MAX_ATTEMPTS,
        breakerThreshold: config.NXCLOUD_BREAKER_THRESHOLD,
        breakerOpenMs: config.NXCLOUD_BREAKER_OPEN_MS,
      },
    },
    cachePolicy: {
      ttlSeconds: config.CACHE_TTL_SECONDS,
      staleWhileRevalidateSeconds: config.CACHE_STALE_WHILE_REVALIDATE_SECONDS,
      staleIfErrorSeconds: config.CACHE_STALE_IF_ERROR_SECONDS,
      negativeTtlSeconds: config.CACHE_NEGATIVE_TTL_SECONDS,
    },
    cacheKeyPrefix: config.CACHE_KEY_PREFIX,
    cacheMaxEntries: config.CACHE_MAX_ENTRIES,
  })
  await app.register(healthRoutes)
  await app.register(openApiRoutes)
  await app.register(tenantPhonesRoutes)
}

// One write per request line would cost as much as the request itself on a cache hit: lines are
// gathered up to LOG_BUFFER_BYTES and written at least every LOG_FLUSH_INTERVAL_MS (pino flushes on exit).
const LOG_BUFFER_BYTES = 4096
const LOG_FLUSH_INTERVAL_MS = 1000

function bufferedStdout (): DestinationStream {
  return destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_INTERVAL_MS })
}

// Fastify treats a bare number as "trust nothing"; a hop count is spelled as proxy-addr's hop test.
function trustProxyOption (trustProxy: TrustProxy): false | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trustProxy !== 'number') return trustProxy
  if (trustProxy === 0) return false
  return (_address, hop) => hop < trustProxy
}

function accessOptionsOf (config: Config): AccessPluginOptions {
  const { API_KEYS_FILE: file, JWT_JWKS_URL: jwksUrl, JWT_ISSUER: issuer, JWT_AUDIENCE: audience } = config
  return {
    disabled: config.AUTH_DISABLED,
    apiKeys: file === undefined
      ? undefined
      : { file, reloadIntervalMs: config.API_KEYS_RELOAD_INTERVAL_MS, rejectDemoKeys: !config.NXCLOUD_ALLOW_DEMO_CREDENTIALS },
    jwt: jwksUrl === undefined || issuer === undefined || audience === undefined
      ? undefined
      : { jwksUrl, issuer, audience, tenantsClaim: config.JWT_TENANTS_CLAIM, cooldownMs: config.JWT_JWKS_COOLDOWN_MS },
  }
}

function parseOrigins (list: string): string[] {
  return list.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
}
