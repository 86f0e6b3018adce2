import Fastify, { type FastifyInstance } from 'fastify'
import type { DestinationStream, LoggerOptions } from 'pino'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { commaSeparated, type Config, type TrustProxy } from './config.js'
import { answerClientError, answerFrameworkError } from './errors/connection-errors.js'
import { errorHandlerPlugin } from './errors/error-handler.js'
import { requestTracingPlugin, traceIdsLogMixin, tracingEnabled } from './observability/tracing.js'
import { accessPlugin, type AccessPluginOptions } from './plugins/access.js'
import { corsPlugin } from './plugins/cors.js'
import { docsPagePlugin } from './plugins/docs-page.js'
import { metricsPlugin } from './plugins/metrics.js'
import { connectionStatePlugin } from './plugins/connection-state.js'
import { phoneListPlugin } from './plugins/phone-list.js'
import { rateLimitPlugin } from './plugins/rate-limit.js'
import { redisPlugin } from './plugins/redis.js'
import { redisTopologyOf } from './redis/redis-client.js'
import { givenLogDestination, stdoutLogDestination } from './logging/log-destination.js'
import { AccessLogController, requestIdOf } from './logging/request-logging.js'
import { swaggerPlugin } from './plugins/swagger.js'
import { healthRoutes } from './routes/health.js'
import { openApiRoutes } from './routes/openapi.js'
import { problemPagesRoutes } from './routes/problem-pages.js'
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

const BYTES_PER_MIB = 1024 * 1024

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
  const logDestination = options.logStream === undefined ? stdoutLogDestination() : givenLogDestination(options.logStream)
  const logger: LoggerOptions & { stream: DestinationStream } = {
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    ...(tracingEnabled() ? { mixin: traceIdsLogMixin } : {}),
    stream: logDestination.stream,
  }
  const app = Fastify({
    logger,
    logController: new AccessLogController(),
    genReqId: requestIdOf,
    requestIdHeader: false,
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    // connectionStatePlugin serves what arrives during close; /readyz answers 503 itself.
    return503OnClosing: false,
    ...httpEdgeOptions(config),
  }).withTypeProvider<TypeBoxTypeProvider>()
  // What the destination buffers is written before close() returns; pino writes it at process exit too.
  app.addHook('onClose', async () => { logDestination.close() })
  return app
}

type App = ReturnType<typeof createFastify>

async function registerPlugins (app: App, config: Config): Promise<void> {
  // First, so that the request span is open before any other hook runs.
  const requestTracing = requestTracingPlugin()
  if (requestTracing !== undefined) await app.register(requestTracing)
  await app.register(errorHandlerPlugin)
  await app.register(connectionStatePlugin, {
    maxUnsentBytesPerConnection: config.HTTP_MAX_UNSENT_BYTES_PER_CONNECTION,
    closeLingerMs: config.HTTP_CLOSE_LINGER_MS,
  })
  await app.register(corsPlugin, { origins: commaSeparated(config.CORS_ORIGINS) })
  await app.register(swaggerPlugin, { version: SERVICE_VERSION })
  await app.register(redisPlugin, { topology: redisTopologyOf(config), commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  await app.register(metricsPlugin)
  // The limiter first: the access plugin puts its hooks around the limiter's (authenticate, limit, authorise).
  await app.register(rateLimitPlugin, {
    max: config.RATE_LIMIT_MAX,
    windowMs: config.RATE_LIMIT_WINDOW_MS,
    keyPrefix: config.CACHE_KEY_PREFIX,
    syncIntervalMs: config.RATE_LIMIT_SYNC_MS,
  })
  await app.register(accessPlugin, accessOptionsOf(config))
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
        breakerFailureRatio: config.NXCLOUD_BREAKER_FAILURE_RATIO,
        breakerMinCalls: config.NXCLOUD_BREAKER_MIN_CALLS,
        breakerWindowMs: config.NXCLOUD_BREAKER_WINDOW_MS,
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
    cacheMemoryMaxBytes: config.CACHE_MEMORY_MAX_MB * BYTES_PER_MIB,
  })
  await app.register(healthRoutes)
  await app.register(openApiRoutes)
  await app.register(problemPagesRoutes)
  await app.register(docsPagePlugin)
  await app.register(tenantPhonesRoutes)
}

// Node's default limit on a request line and headers together; past it the parser answers 431.
const MAX_HEADER_BYTES = 16_384
// Node checks the headers and request timeouts on a timer (30 s by default), so a timeout fires up to
// one period late: a tenth of the shorter timeout, between these bounds, keeps enforcement close.
const TIMEOUT_CHECK_MIN_MS = 25
const TIMEOUT_CHECK_MAX_MS = 1_000

/**
 * The HTTP edge: timeouts that cut slow or stalled clients, a per-connection request cap, and every
 * answer given before a route runs (parser, router) made a problem with a request id.
 */
function httpEdgeOptions (config: Config) {
  const shorterTimeout = Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS)
  return {
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: config.HTTP_CONNECTION_TIMEOUT_MS,
    maxRequestsPerSocket: config.HTTP_MAX_REQUESTS_PER_SOCKET,
    http: {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MAX_MS, Math.max(TIMEOUT_CHECK_MIN_MS, Math.floor(shorterTimeout / 10))),
      // Node's own 400 for a missing Host has no body and no request id: the error handler refuses it instead.
      requireHostHeader: false,
    },
    // The appkey's length is the route schema's to judge (a 400 invalid-request at any length); a path
    // segment cannot be longer than the head the parser accepts anyway.
    routerOptions: { maxParamLength: MAX_HEADER_BYTES },
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
  }
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
