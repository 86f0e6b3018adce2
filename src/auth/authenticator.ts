import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { HttpHeaders } from '../http/headers.js'
import { LogThrottle } from '../logging/log-throttle.js'
import { createApiKeyRegistry, isWellFormedApiKey, type ApiKeyRegistry, type ApiKeyRegistryOptions } from './api-keys.js'
import { AuthenticationFailure, type AuthenticationFailureReason, type Caller, type Scope } from './caller.js'
import { createJwtVerifier, type JwtVerifier, type JwtVerifierOptions } from './jwt-verifier.js'

export interface AuthenticatorOptions {
  apiKeys: Omit<ApiKeyRegistryOptions, 'log'> | undefined
  jwt: Omit<JwtVerifierOptions, 'log'> | undefined
  log: FastifyBaseLogger
  /** Told of each failed authentication (metrics). */
  onFailure: (reason: AuthenticationFailureReason) => void
}

/** Who the request says it is: a caller, why not, or a promise of either for a token not verified before. */
export type AuthenticationOutcome = Caller | AuthenticationFailure

export interface Authenticator {
  /** Throws AuthenticationUnavailable when tokens cannot be verified at all (no signing keys). */
  authenticate (headers: IncomingHttpHeaders): AuthenticationOutcome | Promise<AuthenticationOutcome>
  /** The WWW-Authenticate value of a 401: the schemes accepted, and what was wrong with a bearer token. */
  challenge (failure: AuthenticationFailure): string
  /** The WWW-Authenticate value of a 403 to a bearer caller without the scope (RFC 6750 §3.1). */
  insufficientScope (scope: Scope): string
  /** While tokens cannot be verified: seconds until the identity provider's keys are fetched again. */
  retryAfterSeconds (): number
  /** Logs the failure (bounded) and tells `onFailure`. */
  reportFailure (log: FastifyBaseLogger, address: string, failure: AuthenticationFailure): void
  close (): void
}

const REALM = 'nxcloud-bff'
const BEARER_PREFIX = /^Bearer +/i
// A flood of bad credentials must not flood the log: this many warnings per interval, then a count.
const FAILURE_WARNINGS_PER_INTERVAL = 10
const FAILURE_WARNING_INTERVAL_MS = 10_000

/** API keys (X-API-Key) and bearer tokens (Authorization), as configured; either may be absent. */
export function createAuthenticator (options: AuthenticatorOptions): Authenticator {
  const { log } = options
  const apiKeys = options.apiKeys === undefined ? undefined : createApiKeyRegistry({ ...options.apiKeys, log })
  const jwt = options.jwt === undefined ? undefined : createJwtVerifier({ ...options.jwt, log })
  const warnings = new LogThrottle(FAILURE_WARNINGS_PER_INTERVAL, FAILURE_WARNING_INTERVAL_MS)
  const apiKeyChallenge = `ApiKey realm="${REALM}", header="${HttpHeaders.apiKey.canonical}"`

  return {
    authenticate (headers) {
      const apiKey = headers[HttpHeaders.apiKey.name]
      const authorization = headers.authorization
      if (apiKey !== undefined && authorization !== undefined) {
        return new AuthenticationFailure('ambiguous-credentials', undefined, `Send either ${HttpHeaders.apiKey.canonical} or Authorization, not both`)
      }
      if (apiKey !== undefined) return authenticateApiKey(apiKeys, apiKey)
      if (authorization !== undefined) return authenticateBearer(jwt, authorization)
      return new AuthenticationFailure('missing-credentials', undefined,
        `This operation needs an API key (${HttpHeaders.apiKey.canonical}) or a bearer token`)
    },
    challenge (failure) {
      const challenges: string[] = []
      if (jwt !== undefined) {
        const bearerError = failure.scheme === 'bearer' ? `, error="invalid_token", error_description="${failure.detail.replaceAll('"', "'")}"` : ''
        challenges.push(`Bearer realm="${REALM}"${bearerError}`)
      }
      if (apiKeys !== undefined) challenges.push(apiKeyChallenge)
      return challenges.join(', ')
    },
    insufficientScope: (scope) => `Bearer realm="${REALM}", error="insufficient_scope", scope="${scope}"`,
    retryAfterSeconds: () => jwt?.secondsUntilNextFetch() ?? 1,
    reportFailure (requestLog, address, failure) {
      options.onFailure(failure.reason)
      const admitted = warnings.admit((suppressed) => {
        requestLog.warn({ auth: { suppressed } }, 'authentication failures not logged in the last interval')
      })
      if (admitted) requestLog.warn({ auth: { reason: failure.reason, scheme: failure.scheme, address } }, 'authentication failed')
    },
    close: () => { apiKeys?.close() },
  }
}

function authenticateApiKey (apiKeys: ApiKeyRegistry | undefined, apiKey: string | string[]): AuthenticationOutcome {
  if (apiKeys === undefined) return new AuthenticationFailure('api-keys-not-accepted', 'api-key', 'This service accepts no API keys')
  // A key seen before is known without checking its form again.
  const caller = typeof apiKey === 'string' ? apiKeys.callerFor(apiKey) : undefined
  if (caller !== undefined) return caller
  if (typeof apiKey !== 'string' || !isWellFormedApiKey(apiKey)) {
    return new AuthenticationFailure('malformed-api-key', 'api-key', 'The API key is not well-formed')
  }
  return new AuthenticationFailure('unknown-api-key', 'api-key', 'The API key is not known')
}

function authenticateBearer (jwt: JwtVerifier | undefined, authorization: string): AuthenticationOutcome | Promise<AuthenticationOutcome> {
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
