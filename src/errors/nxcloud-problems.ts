import { HttpHeaders } from '../http/headers.js'
import { NxCloudError } from '../nxcloud/nxcloud-error.js'
import { isAuthenticationCode, UpstreamCodes } from '../nxcloud/upstream-codes.js'
import { ProblemError } from './problem-error.js'
import { ProblemTypes, type ProblemKind } from './problem-types.js'

const INTERNAL_STATUS = ProblemTypes.internal.status

/** Which problem a failed NxCloud call becomes (the README's error table, as code). */
export function problemKindOf (error: NxCloudError): ProblemKind {
  switch (error.kind) {
    case 'nxcloud-error': return problemKindForCode(error.code ?? Number.NaN)
    case 'timeout': return 'upstreamTimeout'
    case 'unreachable': return 'upstreamUnreachable'
    case 'invalid-response':
    case 'http-status': return 'upstreamInvalidResponse'
    case 'breaker-open':
    case 'shed': return 'upstreamUnavailable'
  }
}

function problemKindForCode (code: number): ProblemKind {
  switch (code) {
    case UpstreamCodes.appkeyNotFound: return 'tenantNotFound'
    case UpstreamCodes.appkeyOfAnotherCustomer: return 'tenantForbidden'
    case UpstreamCodes.parameterException: return 'upstreamRejectedParameters'
    default: return isAuthenticationCode(code) ? 'upstreamAuthentication' : 'upstreamError'
  }
}

/** The problem answer for a failed NxCloud call, with the code NxCloud answered and when to retry. */
export function problemOf (error: NxCloudError): ProblemError {
  const kind = problemKindOf(error)
  return new ProblemError(kind, detailOf(error, kind), {
    upstreamCode: error.code,
    headers: error.retryAfterSeconds === undefined ? undefined : { [HttpHeaders.retryAfter.name]: error.retryAfterSeconds },
    cause: error,
  })
}

/** The HTTP status an outcome's error is answered with (Cache-Status names it as `fwd-status`). */
export function problemStatusOf (error: unknown): number {
  if (error instanceof NxCloudError) return ProblemTypes[problemKindOf(error)].status
  if (error instanceof ProblemError) return error.statusCode
  return INTERNAL_STATUS
}

// For the tenant-level answers NxCloud's own words help the caller; for the rest they are ours to fix.
function detailOf (error: NxCloudError, kind: ProblemKind): string {
  if (error.kind !== 'nxcloud-error') return error.message
  return kind === 'tenantNotFound' || kind === 'tenantForbidden' || kind === 'upstreamRejectedParameters'
    ? error.message
    : `NxCloud answered code ${error.code}`
}
