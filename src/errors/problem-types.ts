/**
 * Every kind of problem the service answers with (RFC 9457). This table is the single source for
 * the error handler, the OpenAPI document, the problem pages, the README and the tests: a kind's
 * `type` URI is a stable identifier clients may switch on, resolved relative to the service's own
 * origin, and dereferences to a page saying when it happens and what to do (RFC 9457 §3.1.1).
 */
export const ProblemTypes = {
  invalidRequest: {
    status: 400,
    type: '/problems/invalid-request',
    title: 'The request is not valid',
    whenItHappens: 'The request itself is malformed: an appkey that is not 1–64 of A-Z a-z 0-9 _ -, a request that is not valid HTTP/1.1 (a malformed request line, no Host), or a path that is not valid percent-encoding. NxCloud is not called.',
    whatToDo: 'Fix the request: the problem\'s detail says what is wrong. The same request always gets the same answer.',
  },
  routeNotFound: {
    status: 404,
    type: '/problems/route-not-found',
    title: 'No such route',
    whenItHappens: 'No route answers this path (or, under /problems/, no problem type has this name).',
    whatToDo: 'Check the path against the contract (/openapi.json); a tenant\'s list is at /tenants/{appkey}/phones.',
  },
  methodNotAllowed: {
    status: 405,
    type: '/problems/method-not-allowed',
    title: 'The route does not answer this method',
    whenItHappens: 'The path exists but does not answer this method.',
    whatToDo: 'Use one of the methods the Allow header lists.',
  },
  requestTimeout: {
    status: 408,
    type: '/problems/request-timeout',
    title: 'The request did not arrive in time',
    whenItHappens: 'The request line and headers, or the whole request, did not arrive within the time the service allows; the connection is closed.',
    whatToDo: 'Send the request again on a new connection, whole and without pauses. A client that trickles its request, or a stalled network, gets this.',
  },
  expectationFailed: {
    status: 417,
    type: '/problems/expectation-failed',
    title: 'The expectation cannot be met',
    whenItHappens: 'The request carried an Expect header field with an expectation other than 100-continue, the only one the service meets (RFC 9110 §10.1.1). It is answered before any route runs; the connection is closed.',
    whatToDo: 'Send the request again without that Expect field. Expect: 100-continue is met: the service answers 100 Continue, then the request.',
  },
  requestHeadTooLarge: {
    status: 431,
    type: '/problems/request-head-too-large',
    title: 'The request line and header fields are too large',
    whenItHappens: 'The request line and header fields together exceed 16 KiB; the connection is closed.',
    whatToDo: 'Send fewer or smaller header fields (a large cookie or token is the usual cause).',
  },
  unauthenticated: {
    status: 401,
    type: '/problems/unauthenticated',
    title: 'Credentials are missing or not valid',
    whenItHappens: 'No credentials, credentials that are not valid (an unknown or malformed API key; a token that expired, is not yet valid, or has a wrong signature, issuer or audience), or an API key and a bearer token at once. WWW-Authenticate names the schemes accepted.',
    whatToDo: 'Send exactly one credential: X-API-Key for services, Authorization: Bearer for browsers. Repeating a refused credential does not help and counts against your address\'s rate limit; an expired token needs a new one from the identity provider.',
  },
  insufficientScope: {
    status: 403,
    type: '/problems/insufficient-scope',
    title: 'The caller lacks the scope this operation needs',
    whenItHappens: 'The credentials are valid but lack the scope the operation needs: phones:read to read a list, cache:refresh to refresh one.',
    whatToDo: 'Ask the service\'s owners for a key, or your identity provider for a token, with that scope. Retrying does not help.',
  },
  tenantNotAllowed: {
    status: 403,
    type: '/problems/tenant-not-allowed',
    title: 'The caller may not read this tenant',
    whenItHappens: 'The appkey is not among the tenants the caller\'s credentials name. It is checked before the cache or NxCloud, so the answer says nothing about whether the tenant exists.',
    whatToDo: 'Check the appkey you sent; if it is right, ask for the tenant to be added to your key or token. Retrying does not help.',
  },
  authenticationUnavailable: {
    status: 503,
    type: '/problems/authentication-unavailable',
    title: 'Bearer tokens cannot be verified right now',
    whenItHappens: 'A bearer token was sent, but the identity provider\'s signing keys (JWKS) could never be fetched, so no token can be verified. API keys still work.',
    whatToDo: 'Retry after the seconds Retry-After names. It is not your token\'s fault: report it with the requestId if it lasts.',
    retryAfter: true,
  },
  rateLimited: {
    status: 429,
    type: '/problems/rate-limited',
    title: 'Too many requests',
    whenItHappens: 'The caller (or, without valid credentials, the client address) sent more requests in the current window than its quota, which RateLimit-Limit states (RateLimit-Reset: when the window ends).',
    whatToDo: 'Wait the seconds Retry-After names before the next request. Keep the lists you read for as long as Cache-Control allows, and revalidate with If-None-Match. A quota too small for your use is raised per key by the service\'s owners.',
    retryAfter: true,
  },
  tenantNotFound: {
    status: 404,
    type: '/problems/tenant-not-found',
    title: 'The appkey does not exist at NxCloud',
    whenItHappens: 'NxCloud says the appkey does not exist (code 9008). The service remembers this answer for a short while (CACHE_NEGATIVE_TTL_SECONDS).',
    whatToDo: 'Check the appkey. A tenant created a moment ago is found once the remembered answer has expired.',
  },
  tenantForbidden: {
    status: 403,
    type: '/problems/tenant-forbidden',
    title: 'The appkey belongs to another NxCloud customer',
    whenItHappens: 'NxCloud says the appkey belongs to another NxCloud customer (code 9010) than the one this service reads for.',
    whatToDo: 'This service cannot read that tenant: check the appkey. Retrying does not help.',
  },
  upstreamRejectedParameters: {
    status: 400,
    type: '/problems/upstream-rejected-parameters',
    title: 'NxCloud rejected the request parameters',
    whenItHappens: 'NxCloud rejected the parameters of the call (code 9000), which the service builds from the appkey.',
    whatToDo: 'Check the appkey. If it is right, report the requestId: the service may be sending something NxCloud no longer accepts.',
  },
  upstreamAuthentication: {
    status: 502,
    type: '/problems/upstream-authentication',
    title: 'NxCloud rejected this service\'s credentials',
    whenItHappens: 'NxCloud rejected this service\'s own integrator credentials or signature (codes 1000–1099, or 9007: not an integrator). Nothing the caller sent is wrong; lists the service holds are still answered.',
    whatToDo: 'Retry later and report the requestId: the service\'s operators must fix its credentials or clock.',
  },
  upstreamError: {
    status: 502,
    type: '/problems/upstream-error',
    title: 'NxCloud answered with an error',
    whenItHappens: 'NxCloud answered with an error code (-1 request failed, 9001 system busy, or a code it does not document), and the service\'s retries did not help.',
    whatToDo: 'Retry after a while, with backoff; report the requestId if it lasts.',
  },
  upstreamInvalidResponse: {
    status: 502,
    type: '/problems/upstream-invalid-response',
    title: 'NxCloud answered with something that is not a phone list',
    whenItHappens: 'NxCloud answered with something that is not a phone list: an HTTP status other than 2xx, a body that is not JSON, or an envelope or phone record of the wrong shape.',
    whatToDo: 'Retry later and report the requestId: NxCloud may have changed what it answers.',
  },
  upstreamUnreachable: {
    status: 502,
    type: '/problems/upstream-unreachable',
    title: 'NxCloud could not be reached',
    whenItHappens: 'The connection to NxCloud was refused or reset, and the service\'s retries did not help.',
    whatToDo: 'Retry after a while, with backoff.',
  },
  upstreamUnavailable: {
    status: 503,
    type: '/problems/upstream-unavailable',
    title: 'NxCloud calls are suspended or over capacity',
    whenItHappens: 'The service is not calling NxCloud right now: its circuit breaker is open after repeated NxCloud failures, or too many calls are already running or waiting (load shedding). Lists the service holds are still answered.',
    whatToDo: 'Retry after the seconds Retry-After names, not sooner: more calls now only prolong it.',
    retryAfter: true,
  },
  upstreamTimeout: {
    status: 504,
    type: '/problems/upstream-timeout',
    title: 'NxCloud did not answer in time',
    whenItHappens: 'NxCloud did not answer within the service\'s time budget for a call, retries included.',
    whatToDo: 'Retry after a while, with backoff; report the requestId if it lasts.',
  },
  internal: {
    status: 500,
    type: '/problems/internal',
    title: 'Internal error',
    whenItHappens: 'Something the service did not foresee: a bug. The details are in the service\'s log under the requestId, never in the answer.',
    whatToDo: 'Report it with the requestId. Retrying may help or not.',
  },
} as const satisfies Record<string, ProblemType>

export interface ProblemType {
  status: number
  type: string
  title: string
  /** What makes the service answer it: shown on the type's page (GET the `type` URI). */
  whenItHappens: string
  /** What a caller should do about it, also on the page. */
  whatToDo: string
  /** Answers of this kind carry Retry-After: the seconds to wait before calling again. */
  retryAfter?: true
}

export type ProblemKind = keyof typeof ProblemTypes

/** A kind's entry, its optional fields readable (the table's `as const` keeps each entry's own shape). */
export function problemTypeOf (kind: ProblemKind): ProblemType {
  return ProblemTypes[kind]
}

export function problemKindsWithStatus (status: number): ProblemKind[] {
  return (Object.keys(ProblemTypes) as ProblemKind[]).filter((kind) => ProblemTypes[kind].status === status)
}
