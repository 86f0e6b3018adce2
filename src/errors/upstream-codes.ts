import type { ProblemKind } from './problem-types.js'

/** NxCloud envelope codes with a meaning of their own; every other non-zero code is an upstream error. */
export const UpstreamCodes = {
  success: 0,
  parameterException: 9000,
  notAnIntegrator: 9007,
  appkeyNotFound: 9008,
  appkeyOfAnotherCustomer: 9010,
} as const

// 1000–100X are documented as "authentication issue"; the whole 1000–1099 block is reserved for it.
const AUTHENTICATION_CODES = { first: 1000, last: 1099 }

export function isAuthenticationCode (code: number): boolean {
  return (code >= AUTHENTICATION_CODES.first && code <= AUTHENTICATION_CODES.last) ||
    code === UpstreamCodes.notAnIntegrator
}

/** Which problem a non-zero NxCloud code becomes (the README's error table, as code). */
export function problemKindForUpstreamCode (code: number): ProblemKind {
  switch (code) {
    case UpstreamCodes.appkeyNotFound: return 'tenantNotFound'
    case UpstreamCodes.appkeyOfAnotherCustomer: return 'tenantForbidden'
    case UpstreamCodes.parameterException: return 'upstreamRejectedParameters'
    default: return isAuthenticationCode(code) ? 'upstreamAuthentication' : 'upstreamError'
  }
}
