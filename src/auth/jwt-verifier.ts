import { createLocalJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { FastifyBaseLogger } from 'fastify'
import { LruMap } from 'toad-cache'
import { readCappedText } from '../http/read-capped-body.js'
import {
  ALL_TENANTS,
  AuthenticationFailure,
  AuthenticationUnavailable,
  type AuthenticationFailureReason,
  type Caller,
} from './caller.js'

// Asymmetric signatures only: `none` and the HMAC family are refused before any key is looked up,
// so a token "signed" with our public key as an HMAC secret never gets near a verification.
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
const CLOCK_TOLERANCE_SECONDS = 30
const MAX_TOKEN_LENGTH = 8 * 1024
const VERIFIED_TOKENS_MAX = 10_000
const JWKS_FETCH_TIMEOUT_MS = 5_000
// Keys are re-read this often in the background, so a key the provider withdrew stops verifying.
const JWKS_REFRESH_INTERVAL_MS = 10 * 60_000
const MAX_JWKS_BYTES = 256 * 1024
const NO_KEYS_RETRY_MS = 5_000
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export interface JwtVerifierOptions {
  jwksUrl: string
  issuer: string
  audience: string
  /** The claim listing the appkeys a token may read: an array of appkeys, or `"*"`. */
  tenantsClaim: string
  /** Least time between two JWKS fetches: unknown key ids cannot make us hammer the provider. */
  cooldownMs: number
  log: FastifyBaseLogger
}

export interface JwtVerifier {
  /** The caller a token names; an AuthenticationFailure for a bad token; AuthenticationUnavailable without keys. */
  verify (token: string): Caller | Promise<Caller>
  /** Seconds until the key set will be fetched again, for Retry-After while there are no keys. */
  secondsUntilNextFetch (): number
}

interface VerifiedToken {
  caller: Caller
  expiresAtMs: number
}

/**
 * Verifies bearer tokens against the identity provider's JWKS with `jose`. A token that verified
 * once is remembered until its `exp` (bounded), so a browser's repeated calls cost a map lookup.
 */
export function createJwtVerifier (options: JwtVerifierOptions): JwtVerifier {
  const keys = createKeySource(options)
  const verified = new LruMap<VerifiedToken>(VERIFIED_TOKENS_MAX)
  const verifyOptions = {
    issuer: options.issuer,
    audience: options.audience,
    algorithms: ASYMMETRIC_ALGORITHMS,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp', 'sub'],
  }

  // A token without `kid` matches every key of its type; during a rotation that keeps the old key
  // there are several, and jose hands them over to be tried in turn.
  async function verifyWithKeys (token: string): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, keys.getKey, verifyOptions)).payload
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error
      for await (const key of error) {
        try {
          return (await jwtVerify(token, key, verifyOptions)).payload
        } catch (attempt) {
          if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt
        }
      }
      throw new errors.JWSSignatureVerificationFailed()
    }
  }

  async function verifyAndRemember (token: string): Promise<Caller> {
    let payload: JWTPayload
    try {
      payload = await verifyWithKeys(token)
    } catch (error) {
      if (error instanceof AuthenticationUnavailable) throw error
      throw failureOf(error)
    }
    const caller = callerOf(payload, options.tenantsClaim)
    verified.set(token, { caller, expiresAtMs: (payload.exp ?? 0) * 1000 })
    return caller
  }

  function verifiedCaller (token: string): Caller | undefined {
    const known = verified.get(token)
    return known !== undefined && Date.now() < known.expiresAtMs ? known.caller : undefined
  }

  return {
    secondsUntilNextFetch: () => keys.secondsUntilNextFetch(),
    verify (token) {
      const known = verifiedCaller(token)
      if (known !== undefined) return known
      if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
        throw new AuthenticationFailure('malformed-token', 'bearer', 'The bearer token is not a signed JWT')
      }
      return verifyAndRemember(token)
    },
  }
}

interface KeySource {
  getKey: JWTVerifyGetKey
  secondsUntilNextFetch (): number
}

/**
 * The provider's keys, kept after every failed refresh: an unreachable JWKS does not stop tokens
 * signed with keys we already have. An unknown `kid` refetches at most once per cooldown.
 */
function createKeySource (options: JwtVerifierOptions): KeySource {
  let localSet: ReturnType<typeof createLocalJWKSet> | undefined
  let fetchedAt = Number.NEGATIVE_INFINITY
  let lastAttemptAt = Number.NEGATIVE_INFINITY
  let pending: Promise<void> | undefined

  function refresh (): Promise<void> {
    pending ??= fetchKeySet(options.jwksUrl)
      .then((jwks) => {
        localSet = createLocalJWKSet(jwks)
        fetchedAt = Date.now()
        options.log.info({ jwks: { url: options.jwksUrl, keys: jwks.keys.length } }, 'JWKS loaded')
      })
      .catch((error: unknown) => {
        options.log.error({ jwks: { url: options.jwksUrl }, reason: (error as Error).message },
          localSet === undefined ? 'JWKS unavailable: bearer tokens cannot be verified' : 'JWKS refresh failed; keeping the keys already loaded')
      })
      .finally(() => { pending = undefined })
    lastAttemptAt = Date.now()
    return pending
  }

  // With no keys at all every bearer request fails, so the first key set is retried sooner.
  const cooldownMs = () => (localSet === undefined ? Math.min(options.cooldownMs, NO_KEYS_RETRY_MS) : options.cooldownMs)
  const coolingDown = () => Date.now() - lastAttemptAt < cooldownMs()

  // Fetched at start so that the first token does not wait for it.
  refresh().catch(() => {})

  return {
    secondsUntilNextFetch: () => Math.max(1, Math.ceil((lastAttemptAt + cooldownMs() - Date.now()) / 1000)),
    async getKey (header, token) {
      if (localSet === undefined) {
        if (pending !== undefined || !coolingDown()) await (pending ?? refresh())
        if (localSet === undefined) throw new AuthenticationUnavailable('The identity provider\'s keys (JWKS) cannot be fetched')
      } else if (Date.now() - fetchedAt > JWKS_REFRESH_INTERVAL_MS && !coolingDown()) {
        refresh().catch(() => {})
      }
      try {
        return await localSet(header, token)
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || coolingDown()) throw error
        await refresh()
        return await localSet(header, token)
      }
    },
  }
}

async function fetchKeySet (url: string): Promise<{ keys: Array<Record<string, unknown>> }> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS),
    redirect: 'error',
    headers: { accept: 'application/json, application/jwk-set+json' },
  })
  if (response.status !== 200) {
    await response.body?.cancel()
    throw new Error(`JWKS answered HTTP ${response.status}`)
  }
  if (response.body === null) throw new Error('JWKS answered without a body')
  const jwks = JSON.parse(await readCappedText(response.body, MAX_JWKS_BYTES,
    () => new Error('JWKS is larger than any key set should be'))) as unknown
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new Error('JWKS is not a {keys: [...]} document')
  }
  return jwks as { keys: Array<Record<string, unknown>> }
}

function callerOf (payload: JWTPayload, tenantsClaim: string): Caller {
  return {
    id: `jwt:${String(payload.sub)}`,
    tenants: tenantsOf(payload[tenantsClaim]),
    scopes: scopesOf(payload),
  }
}

function tenantsOf (claim: unknown): Caller['tenants'] {
  if (claim === ALL_TENANTS) return ALL_TENANTS
  if (!Array.isArray(claim)) return new Set()
  const appkeys = claim.filter((appkey): appkey is string => typeof appkey === 'string')
  return appkeys.includes(ALL_TENANTS) ? ALL_TENANTS : new Set(appkeys)
}

// OAuth 2.0 puts scopes in `scope` (space-separated, RFC 8693); some providers use `scp` (array or string).
function scopesOf (payload: JWTPayload): Set<string> {
  const scopes = new Set<string>()
  for (const claim of [payload['scope'], payload['scp']]) {
    const values = typeof claim === 'string' ? claim.split(' ') : Array.isArray(claim) ? claim : []
    for (const value of values) if (typeof value === 'string' && value !== '') scopes.add(value)
  }
  return scopes
}

const CLAIM_FAILURES: Record<string, [AuthenticationFailureReason, string]> = {
  iss: ['wrong-issuer', 'The token was issued by another issuer'],
  aud: ['wrong-audience', 'The token is meant for another audience'],
  nbf: ['not-yet-valid', 'The token is not valid yet'],
}

function failureOf (error: unknown): AuthenticationFailure {
  const fail = (reason: AuthenticationFailureReason, detail: string) => new AuthenticationFailure(reason, 'bearer', detail)
  if (error instanceof errors.JWTExpired) return fail('expired', 'The token has expired')
  if (error instanceof errors.JWTClaimValidationFailed) {
    const [reason, detail] = CLAIM_FAILURES[error.claim] ?? ['invalid-claims', `The token's ${error.claim} claim is missing or not valid`]
    return fail(reason, detail)
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return fail('algorithm-not-allowed', 'The token\'s signing algorithm is not accepted')
  if (error instanceof errors.JWSSignatureVerificationFailed) return fail('bad-signature', 'The token\'s signature is not valid')
  if (error instanceof errors.JWKSNoMatchingKey) return fail('unknown-key-id', 'The token was signed with a key the identity provider does not publish')
  return fail('malformed-token', 'The bearer token is not a valid signed JWT')
}
