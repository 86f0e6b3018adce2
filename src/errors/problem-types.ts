/**
 * Every kind of problem the service answers with (RFC 9457). This table is the single source for
 * the error handler, the OpenAPI document, the README and the tests: a kind's `type` URI is a
 * stable identifier clients may switch on, resolved relative to the service's own origin.
 */
export const ProblemTypes = {
  invalidRequest: {
    status: 400,
    type: '/problems/invalid-request',
    title: 'The request is not valid',
  },
  routeNotFound: {
    status: 404,
    type: '/problems/route-not-found',
    title: 'No such route',
  },
  methodNotAllowed: {
    status: 405,
    type: '/problems/method-not-allowed',
    title: 'The route does not answer this method',
  },
  requestTimeout: {
    status: 408,
    type: '/problems/request-timeout',
    title: 'The request did not arrive in time',
  },
  requestHeadTooLarge: {
    status: 431,
    type: '/problems/request-head-too-large',
    title: 'The request line and header fields are too large',
  },
  unauthenticated: {
    status: 401,
    type: '/problems/unauthenticated',
    title: 'Credentials are missing or not valid',
  },
  insufficientScope: {
    status: 403,
    type: '/problems/insufficient-scope',
    title: 'The caller lacks the scope this operation needs',
  },
  tenantNotAllowed: {
    status: 403,
    type: '/problems/tenant-not-allowed',
    title: 'The caller may not read this tenant',
  },
  authenticationUnavailable: {
    status: 503,
    type: '/problems/authentication-unavailable',
    title: 'Bearer tokens cannot be verified right now',
  },
  rateLimited: {
    status: 429,
    type: '/problems/rate-limited',
    title: 'Too many requests',
  },
  tenantNotFound: {
    status: 404,
    type: '/problems/tenant-not-found',
    title: 'The appkey does not exist at NxCloud',
  },
  tenantForbidden: {
    status: 403,
    type: '/problems/tenant-forbidden',
    title: 'The appkey belongs to another NxCloud customer',
  },
  upstreamRejectedParameters: {
    status: 400,
    type: '/problems/upstream-rejected-parameters',
    title: 'NxCloud rejected the request parameters',
  },
  upstreamAuthentication: {
    status: 502,
    type: '/problems/upstream-authentication',
    title: 'NxCloud rejected this service\'s credentials',
  },
  upstreamError: {
    status: 502,
    type: '/problems/upstream-error',
    title: 'NxCloud answered with an error',
  },
  upstreamInvalidResponse: {
    status: 502,
    type: '/problems/upstream-invalid-response',
    title: 'NxCloud answered with something that is not a phone list',
  },
  upstreamUnreachable: {
    status: 502,
    type: '/problems/upstream-unreachable',
    title: 'NxCloud could not be reached',
  },
  upstreamUnavailable: {
    status: 503,
    type: '/problems/upstream-unavailable',
    title: 'NxCloud calls are suspended or over capacity',
  },
  upstreamTimeout: {
    status: 504,
    type: '/problems/upstream-timeout',
    title: 'NxCloud did not answer in time',
  },
  internal: {
    status: 500,
    type: '/problems/internal',
    title: 'Internal error',
  },
} as const satisfies Record<string, ProblemType>

export interface ProblemType {
  status: number
  type: string
  title: string
}

export type ProblemKind = keyof typeof ProblemTypes

export function problemKindsWithStatus (status: number): ProblemKind[] {
  return (Object.keys(ProblemTypes) as ProblemKind[]).filter((kind) => ProblemTypes[kind].status === status)
}
