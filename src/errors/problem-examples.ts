import { HttpHeaders } from '../http/headers.js'
import type { ProblemKind } from './problem-types.js'

export interface ProblemExample {
  detail: string
  upstreamCode?: number
  /** Answered by the HTTP parser before the request line was read: no path, so no `instance`. */
  beforeRequestLine?: true
}

/**
 * What one occurrence of each problem kind says, as the contract shows it (the details are those
 * the service writes; the kinds whose detail never varies, a timeout, an unmet expectation or a bug,
 * are answered with the detail written here). Keyed by kind, so a kind added to the problem table
 * without an example here does not compile.
 */
export const ProblemExamples: Record<ProblemKind, ProblemExample> = {
  invalidRequest: { detail: 'params/appkey must match pattern "^[A-Za-z0-9_-]+$"' },
  routeNotFound: { detail: 'No route GET /tenant/demo-shop/phones' },
  methodNotAllowed: { detail: '/tenants/demo-shop/phones answers GET, HEAD, not DELETE' },
  requestTimeout: {
    detail: 'The request line, headers or body did not arrive within the time the service allows; the connection is closed',
    beforeRequestLine: true,
  },
  expectationFailed: { detail: 'The service meets no expectation but 100-continue' },
  requestHeadTooLarge: {
    detail: 'The request line and headers together exceed the size the service accepts',
    beforeRequestLine: true,
  },
  unauthenticated: { detail: `This operation needs an API key (${HttpHeaders.apiKey.canonical}) or a bearer token` },
  insufficientScope: { detail: 'This operation needs the scope phones:read' },
  tenantNotAllowed: { detail: 'The caller may not read the tenant demo-bank' },
  authenticationUnavailable: { detail: 'The identity provider\'s keys (JWKS) cannot be fetched' },
  rateLimited: { detail: 'Rate limit of 100 requests exceeded; retry in 42 seconds' },
  tenantNotFound: { detail: 'NxCloud answered code 9008: APPKEY does not exist', upstreamCode: 9008 },
  tenantForbidden: { detail: 'NxCloud answered code 9010: The customer information of the authentication mechanism is inconsistent with the APPKEY customer information', upstreamCode: 9010 },
  upstreamRejectedParameters: { detail: 'NxCloud answered code 9000: Parameter exception', upstreamCode: 9000 },
  upstreamAuthentication: { detail: 'NxCloud answered code 1001', upstreamCode: 1001 },
  upstreamError: { detail: 'NxCloud answered code 9001', upstreamCode: 9001 },
  upstreamInvalidResponse: { detail: 'NxCloud answered with a body that is not JSON' },
  upstreamUnreachable: { detail: 'The connection to NxCloud failed (ECONNREFUSED)' },
  upstreamUnavailable: { detail: 'NxCloud calls are suspended after repeated failures; retry later' },
  upstreamTimeout: { detail: 'NxCloud did not answer within 5000 ms' },
  internal: { detail: 'The request could not be completed; see the logs for this requestId' },
}
