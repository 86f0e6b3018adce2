import fp from 'fastify-plugin'
import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyBaseLogger, FastifyContextConfig, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { API_KEY_HEADER, createApiKeyRegistry, isWellFormedApiKey, type ApiKeyRegistry } from '../auth/api-keys.js'
import {
  AuthenticationFailure,
  AuthenticationUnavailable,
  hasScope,
  mayReadTenant,
  type Caller,
  type Scope,
} from '../auth/caller.js'
import { createJwtVerifier, type JwtVerifier, type JwtVerifierOptions } from '../auth/jwt-verifier.js'
import { ProblemError } from '../errors/problem-error.js'
import type { Metrics } from '../metrics/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Set by the rate limiter: run by every protected route's guard once the caller is known. */
    afterAuthentication: AfterAuthentication | undefined
    /** Whether a route with this config is guarded here (and so runs `afterAuthentication`). */
    guardsRoute: (config: FastifyContextConfig | undefined) => boolean
    /**
     * The caller whose credentials were verified before (an API key or bearer token seen already), found
     * without I/O or hashing; undefined for anything else, which only the guard may judge. Undefined when
     * AUTH_DISABLED=true.
     */
    knownCaller: ((headers: IncomingHttpHeaders) => Caller | undefined) | undefined
  }
  interface FastifyRequest {
    /** Who is calling, once authenticated; undefined on open routes and when AUTH_DISABLED=true. */
    caller: Caller | undefined
    authenticationFailure: AuthenticationFailure | undefined
  }
  interface FastifyContextConfig {
    /** Marks a route as protected: the scope it needs, and the path parameter naming the tenant. */
    access?: RouteAccess
  }
}

export interface RouteAccess {
  scope: Scope
  tenantParam: string
}

export interface AccessPluginOptions {
  disabled: boolean
  apiKeys: { file: string, reloadIntervalMs: number, rejectDemoKeys: boolean } | undefined
  jwt: Omit<JwtVerifierOptions, 'log'> | undefined
}

const REALM = 'nxcloud-bff'
const BEARER_PREFIX = /^Bearer +/i
// A flood of bad credentials must not flood the log: this many warnings per interval, then a count.
const FAILURE_WARNINGS_PER_INTERVAL = 10
const FAILURE_WARNING_INTERVAL_MS = 10_000

/**
 * Caller authentication and tenant authorization for every route that declares `config.access`.
 * The order is the point: the caller is identified first (so the rate limiter, run next, counts by
 * caller, and counts failed attempts by address), a failure is answered only after that count, and
 * the tenant is checked before validation and the handler, so a denied request touches neither the
 * cache nor NxCloud and learns nothing about the tenant.
 */
export const accessPlugin = fp<AccessPluginOptions>(async function access (app, options) {
  app.decorateRequest('caller', undefined)
  app.decorateRequest('authenticationFailure', undefined)
  app.decorate('afterAuthentication', undefined)
  app.decorate('guardsRoute', (config: FastifyContextConfig | undefined) => !options.disabled && config?.access !== undefined)
  app.decorate('knownCaller', undefined)
  if (options.disabled) {
    app.log.warn('AUTH_DISABLED=true: every tenant is readable by anyone who can reach this service')
    return
  }
  const authenticator = createAuthenticator(options, app.log, app.metrics)
  app.knownCaller = authenticator.knownCaller
  app.addHook('onClose', async () => { authenticator.close() })

  app.addHook('onRoute', (route) => {
    const access = route.config?.access
    if (access === undefined) return
    route.onRequest = [guardHook(authenticator, access, app.afterAuthentication), ...hooksOf(route.onRequest)]
  })
}, { name: 'access', dependencies: ['metrics'] })

function hooksOf<Hook> (hooks: Hook | Hook[] | undefined): Hook[] {
  if (hooks === undefined) return []
  return Array.isArray(hooks) ? hooks : [hooks]
}

interface Authenticator {
  /** A caller, a failure, or a promise of either when a token must be verified for the first time. */
  authenticate (request: FastifyRequest): Caller | AuthenticationFailure | Promise<Caller | AuthenticationFailure>
  /** A caller `authenticate` verified before, from the same credentials (see `app.knownCaller`). */
  knownCaller (headers: IncomingHttpHeaders): Caller | undefined
  challenge (failure: AuthenticationFailure | undefined): string
  /** While tokens cannot be verified: seconds until the identity provider's keys are fetched again. */
  retryAfterSeconds (): number
  /** Logs the failure (bounded) and counts it in the metrics. */
  reportFailure (request: FastifyRequest, failure: AuthenticationFailure): void
  close (): void
}

function createAuthenticator (options: AccessPluginOptions, log: FastifyBaseLogger, metrics: Metrics): Authenticator {
  const apiKeys: ApiKeyRegistry | undefined = options.apiKeys === undefined
    ? undefined
    : createApiKeyRegistry({ ...options.apiKeys, log })
  const jwt: JwtVerifier | undefined = options.jwt === undefined ? undefined : createJwtVerifier({ ...options.jwt, log })
  const logFailure = createFailureLogger()

  return {
    authenticate (request) {
      const apiKey = request.headers[API_KEY_HEADER]
      const authorization = request.headers.authorization
      if (apiKey !== undefined && authorization !== undefined) {
        return new AuthenticationFailure('ambiguous-credentials', undefined, 'Send either X-API-Key or Authorization, not both')
      }
      if (apiKey !== undefined) return authenticateApiKey(apiKeys, apiKey)
      if (authorization !== undefined) return authenticateBearer(jwt, authorization)
      return new AuthenticationFailure('missing-credentials', undefined, 'This operation needs an API key (X-API-Key) or a bearer token')
    },
    knownCaller (headers) {
      const apiKey = headers[API_KEY_HEADER]
      const authorization = headers.authorization
      if (apiKey !== undefined) {
        return authorization === undefined && typeof apiKey === 'string' ? apiKeys?.verifiedCaller(apiKey) : undefined
      }
      if (authorization === undefined || jwt === undefined || !BEARER_PREFIX.test(authorization)) return undefined
      return jwt.verifiedCaller(authorization.replace(BEARER_PREFIX, '').trim())
    },
    challenge (failure) {
      const challenges: string[] = []
      if (jwt !== undefined) {
        const bearerError = failure?.scheme === 'bearer' ? `, error="invalid_token", error_description="${failure.detail.replaceAll('"', "'")}"` : ''
        challenges.push(`Bearer realm="${REALM}"${bearerError}`)
      }
      if (apiKeys !== undefined) challenges.push(`ApiKey realm="${REALM}", header="X-API-Key"`)
      return challenges.join(', ')
    },
    retryAfterSeconds: () => jwt?.secondsUntilNextFetch() ?? 1,
    reportFailure: (request, failure) => {
      metrics.authenticationFailed(failure.reason)
      logFailure(request, failure)
    },
    close: () => { apiKeys?.close() },
  }
}

function authenticateApiKey (apiKeys: ApiKeyRegistry | undefined, apiKey: string | string[]): Caller | AuthenticationFailure {
  if (apiKeys === undefined) return new AuthenticationFailure('api-keys-not-accepted', 'api-key', 'This service accepts no API keys')
  if (typeof apiKey !== 'string' || !isWellFormedApiKey(apiKey)) {
    return new AuthenticationFailure('malformed-api-key', 'api-key', 'The API key is not well-formed')
  }
  return apiKeys.callerFor(apiKey) ?? new AuthenticationFailure('unknown-api-key', 'api-key', 'The API key is not known')
}

function authenticateBearer (jwt: JwtVerifier | undefined, authorization: string): Caller | AuthenticationFailure | Promise<Caller | AuthenticationFailure> {
  if (!BEARER_PREFIX.test(authorization)) {
    return new AuthenticationFailure('malformed-authorization', undefined, 'The Authorization header must be "Bearer <token>"')
  }
  if (jwt === undefined) return new AuthenticationFailure('bearer-not-accepted', 'bearer', 'This service accepts no bearer tokens')
  try {
    const caller = jwt.verify(authorization.replace(BEARER_PREFIX, '').trim())
    return caller instanceof Promise ? caller.catch(failureOrRethrow) : caller
  } catch (error) {
    return failureOrRethrow(error)
  }
}

function failureOrRethrow (error: unknown): AuthenticationFailure {
  if (error instanceof AuthenticationFailure) return error
  throw error
}

/**
 * What runs between authentication and authorization: the rate limiter, which counts by the caller
 * just identified (by address when there is none) and answers 429 itself when one is over its limit.
 * It answers synchronously (a hit pays no promise for it), except when it must ask Redis first
 * (RATE_LIMIT_SYNC_MS=0).
 */
export type AfterAuthentication = (request: FastifyRequest, reply: FastifyReply) => Error | undefined | Promise<Error | undefined>

/**
 * The whole guard of a protected route in one onRequest hook, as every hook is paid by every request:
 * authenticate, let the limiter count, refuse the unauthenticated (401) or under-scoped (403), then
 * the tenant (403). All of it runs before validation, so a caller without credentials learns nothing
 * about what a valid request looks like, and a denied request touches neither the cache nor NxCloud.
 */
function guardHook (authenticator: Authenticator, access: RouteAccess, afterAuthentication: AfterAuthentication | undefined): onRequestHookHandler {
  const decide = (request: FastifyRequest, reply: FastifyReply, outcome: Caller | AuthenticationFailure): Error | undefined | Promise<Error | undefined> => {
    if (outcome instanceof AuthenticationFailure) request.authenticationFailure = outcome
    else request.caller = outcome
    const limited = afterAuthentication?.(request, reply)
    if (limited instanceof Promise) return limited.then((error) => error ?? authorize(authenticator, access, request, reply))
    return limited ?? authorize(authenticator, access, request, reply)
  }
  return function guard (request, reply, done) {
    let outcome: ReturnType<Authenticator['authenticate']>
    try {
      outcome = authenticator.authenticate(request)
    } catch (error) {
      done(asProblem(error, authenticator.retryAfterSeconds()))
      return
    }
    if (outcome instanceof Promise) {
      outcome.then((settled) => { finish(done, decide(request, reply, settled)) }, (error: unknown) => { done(asProblem(error, authenticator.retryAfterSeconds())) })
      return
    }
    finish(done, decide(request, reply, outcome))
  }
}

function finish (done: (error?: Error) => void, decided: Error | undefined | Promise<Error | undefined>): void {
  if (decided instanceof Promise) decided.then(done, done)
  else done(decided)
}

function asProblem (error: unknown, retryAfterSeconds: number): Error {
  if (!(error instanceof AuthenticationUnavailable)) return error as Error
  return new ProblemError('authenticationUnavailable', error.message, { headers: { 'retry-after': retryAfterSeconds } })
}

function authorize (authenticator: Authenticator, access: RouteAccess, request: FastifyRequest, reply: FastifyReply): ProblemError | undefined {
  const caller = request.caller
  if (caller === undefined) {
    const failure = request.authenticationFailure ??
      new AuthenticationFailure('missing-credentials', undefined, 'This operation needs credentials')
    authenticator.reportFailure(request, failure)
    reply.header('www-authenticate', authenticator.challenge(failure))
    return new ProblemError('unauthenticated', failure.detail)
  }
  if (!hasScope(caller, access.scope)) {
    if (request.headers.authorization !== undefined) {
      reply.header('www-authenticate', `Bearer realm="${REALM}", error="insufficient_scope", scope="${access.scope}"`)
    }
    return new ProblemError('insufficientScope', `This operation needs the scope ${access.scope}`)
  }
  const appkey = (request.params as Record<string, string | undefined>)[access.tenantParam] ?? ''
  if (!mayReadTenant(caller, appkey)) return new ProblemError('tenantNotAllowed', `The caller may not read the tenant ${appkey}`)
  return undefined
}

function createFailureLogger (): (request: FastifyRequest, failure: AuthenticationFailure) => void {
  let intervalStartedAt = Number.NEGATIVE_INFINITY
  let warned = 0
  let suppressed = 0
  return (request, failure) => {
    const now = Date.now()
    if (now - intervalStartedAt >= FAILURE_WARNING_INTERVAL_MS) {
      intervalStartedAt = now
      warned = 0
      if (suppressed > 0) request.log.warn({ auth: { suppressed } }, 'authentication failures not logged in the last interval')
      suppressed = 0
    }
    if (warned >= FAILURE_WARNINGS_PER_INTERVAL) {
      suppressed++
      return
    }
    warned++
    request.log.warn({ auth: { reason: failure.reason, scheme: failure.scheme, address: request.ip } }, 'authentication failed')
  }
}
