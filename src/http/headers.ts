import Type, { type TSchema } from 'typebox'

/**
 * A header field the service reads or answers with. Names are lower case, as Node hands request
 * headers over and as HTTP/2 requires; field names are case-insensitive on the wire.
 */
export interface HeaderField {
  readonly name: string
  /** How the contract and messages spell it, where that is not the lower-case name. */
  readonly canonical?: string
  /** The one value the service ever sends in it. */
  readonly value?: string
  /** The field's schema in the OpenAPI document, for those the service answers with. */
  readonly schema?: TSchema
  /** CORS: a browser script may send it (listed in `Access-Control-Allow-Headers`). */
  readonly browserMaySend?: true
  /** CORS: a browser script may read it (listed in `Access-Control-Expose-Headers`). */
  readonly browserMayRead?: true
}

/** A header field the service answers with: it has a schema for the route schemas that document it. */
export interface AnswerHeaderField extends HeaderField {
  readonly schema: TSchema
}

const API_KEY = 'x-api-key'
const API_KEY_CANONICAL = 'X-API-Key'
const CREDENTIAL_HEADERS = `authorization, ${API_KEY}`

/**
 * Every header field the service reads from a request or sends on an answer, once: CORS, the route
 * schemas (so the OpenAPI document), authentication, the error handlers and the logging take their
 * names (and fixed values) here. The rate-limit fields are those @fastify/rate-limit writes with its
 * `enableDraftSpec` option (draft-ietf-httpapi-ratelimit-headers, as drafts -03 to -07 spell them).
 */
export const HttpHeaders = {
  accept: { name: 'accept' },
  contentSecurityPolicy: { name: 'content-security-policy' },
  authorization: { name: 'authorization', browserMaySend: true },
  apiKey: { name: API_KEY, canonical: API_KEY_CANONICAL, browserMaySend: true },
  ifNoneMatch: { name: 'if-none-match', browserMaySend: true },
  requestId: {
    name: 'x-request-id',
    schema: Type.String({
      description: 'The request\'s id: the caller\'s X-Request-Id when it is 1–128 of A-Z a-z 0-9 . _ : -, generated otherwise. On every answer.',
      examples: ['5b0c8c0e-1d0f-4c55-9d0a-4f4f1f7c2a11'],
    }),
    browserMaySend: true,
    browserMayRead: true,
  },
  cache: {
    name: 'x-cache',
    schema: Type.Union([Type.Literal('HIT'), Type.Literal('MISS'), Type.Literal('STALE')], {
      description: 'HIT: from the cache, fresh; STALE: from the cache past its freshness (being refreshed, or NxCloud failing); MISS: from NxCloud.',
    }),
    browserMayRead: true,
  },
  cacheStatus: {
    name: 'cache-status',
    schema: Type.String({
      description: 'RFC 9211: `nxcloud-bff; hit|fwd=miss|stale|request|bypass; fwd-status; ttl; stored; collapsed; detail`.',
      examples: ['nxcloud-bff; hit; ttl=288'],
    }),
    browserMayRead: true,
  },
  cacheControl: {
    name: 'cache-control',
    schema: Type.String({
      description: '`private, max-age=<TTL>, stale-while-revalidate=<s>, stale-if-error=<s>` (with `Age`, how fresh the list is), or `no-store` when caching is off.',
      examples: ['private, max-age=300, stale-while-revalidate=60, stale-if-error=86400'],
    }),
    browserMayRead: true,
  },
  age: {
    name: 'age',
    schema: Type.Integer({ minimum: 0, description: 'Seconds since the list was read from NxCloud.', examples: [12] }),
    browserMayRead: true,
  },
  etag: {
    name: 'etag',
    schema: Type.String({
      description: 'Strong tag of the list\'s bytes; send it as If-None-Match to get 304 while it is unchanged.',
      examples: ['"q0Rk3b1pZ9lYw2m7cXn4vT8sHf6dJ1aE"'],
    }),
    browserMayRead: true,
  },
  vary: {
    name: 'vary',
    // Each caller reads only its own tenants: a shared cache must not hand one caller's answer to another.
    value: CREDENTIAL_HEADERS,
    schema: Type.String({ description: 'The credentials headers: the answer depends on who asks.', examples: [CREDENTIAL_HEADERS] }),
  },
  retryAfter: {
    name: 'retry-after',
    schema: Type.Integer({ minimum: 0, description: 'Seconds until the client may call again (RFC 9110 §10.2.3).', examples: [30] }),
    browserMayRead: true,
  },
  rateLimitLimit: {
    name: 'ratelimit-limit',
    schema: Type.Integer({
      minimum: 0,
      description: 'The requests allowed per window (RATE_LIMIT_MAX, or the API key\'s own limit), counted per caller, ' +
        'or per address when the credentials are missing or not valid.',
      examples: [100],
    }),
    browserMayRead: true,
  },
  rateLimitRemaining: {
    name: 'ratelimit-remaining',
    schema: Type.Integer({ minimum: 0, description: 'The requests left in the current window.', examples: [99] }),
    browserMayRead: true,
  },
  rateLimitReset: {
    name: 'ratelimit-reset',
    schema: Type.Integer({ minimum: 0, description: 'Seconds until the current window ends and the quota is whole again.', examples: [60] }),
    browserMayRead: true,
  },
  wwwAuthenticate: {
    name: 'www-authenticate',
    schema: Type.String({
      description: 'The accepted schemes (RFC 9110 §11.6.1; RFC 6750 for Bearer).',
      examples: [`Bearer realm="nxcloud-bff", ApiKey realm="nxcloud-bff", header="${API_KEY_CANONICAL}"`],
    }),
    browserMayRead: true,
  },
  // Browsers must never guess a type for our JSON (or a problem) and render it as something else.
  contentTypeOptions: { name: 'x-content-type-options', value: 'nosniff' },
  // Asks the client to open a new connection for its next request (drain, the per-connection cap).
  connection: { name: 'connection', value: 'close' },
  allow: {
    name: 'allow',
    schema: Type.String({ description: 'The methods the path answers (RFC 9110 §10.2.1).', examples: ['GET, HEAD'] }),
    browserMayRead: true,
  },
} as const satisfies Record<string, HeaderField>

/** The fields the rate limiter adds to every answer of a limited route. */
export const RATE_LIMIT_HEADERS: readonly AnswerHeaderField[] = [HttpHeaders.rateLimitLimit, HttpHeaders.rateLimitRemaining, HttpHeaders.rateLimitReset]

const fields: readonly HeaderField[] = Object.values(HttpHeaders)

/** The request headers a browser script may send (CORS `allowedHeaders`). */
export const BROWSER_SENDABLE_HEADERS: readonly string[] = fields.filter((field) => field.browserMaySend).map(({ name }) => name)

/** The answer headers a browser script may read (CORS `exposedHeaders`). */
export const BROWSER_READABLE_HEADERS: readonly string[] = fields.filter((field) => field.browserMayRead).map(({ name }) => name)

/** The `headers` of an OpenAPI response in a route schema: each field's schema under its name. */
export function headerSchemas (...answerFields: AnswerHeaderField[]): Record<string, TSchema> {
  return Object.fromEntries(answerFields.map(({ name, schema }) => [name, schema]))
}
