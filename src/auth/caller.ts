/** What a caller may be allowed to do; `cache:refresh` is reserved for the cache-control work. */
export const Scopes = {
  phonesRead: 'phones:read',
  cacheRefresh: 'cache:refresh',
} as const

export type Scope = typeof Scopes[keyof typeof Scopes]

export const KNOWN_SCOPES: readonly Scope[] = Object.values(Scopes)

/** `*`: every tenant. */
export const ALL_TENANTS = '*'

/** An authenticated caller: who it is, which tenants it may read and what it may do there. */
export interface Caller {
  /** `key:<id>` for an API key, `jwt:<sub>` for a token: never a secret, safe to log and to key limits by. */
  id: string
  tenants: ReadonlySet<string> | typeof ALL_TENANTS
  scopes: ReadonlySet<string>
  /** A per-caller request limit per window, overriding RATE_LIMIT_MAX. */
  rateLimitMax?: number
}

export function mayReadTenant (caller: Caller, appkey: string): boolean {
  return caller.tenants === ALL_TENANTS || caller.tenants.has(appkey)
}

export function hasScope (caller: Caller, scope: Scope): boolean {
  return caller.scopes.has(scope)
}

/** Why a request was not authenticated: logged, and told to the caller in general words. */
export type AuthenticationFailureReason =
  | 'missing-credentials'
  | 'ambiguous-credentials'
  | 'malformed-api-key'
  | 'unknown-api-key'
  | 'api-keys-not-accepted'
  | 'malformed-authorization'
  | 'bearer-not-accepted'
  | 'malformed-token'
  | 'expired'
  | 'not-yet-valid'
  | 'bad-signature'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'algorithm-not-allowed'
  | 'unknown-key-id'
  | 'invalid-claims'

export type CredentialScheme = 'api-key' | 'bearer'

export class AuthenticationFailure {
  constructor (
    readonly reason: AuthenticationFailureReason,
    readonly scheme: CredentialScheme | undefined,
    readonly detail: string
  ) {}
}

/** Tokens cannot be checked at all right now (no signing keys could ever be fetched). */
export class AuthenticationUnavailable extends Error {
  constructor (detail: string, options?: ErrorOptions) {
    super(detail, options)
    this.name = 'AuthenticationUnavailable'
  }
}
