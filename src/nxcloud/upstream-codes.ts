/** NxCloud envelope codes with a meaning of their own; every other non-zero code is an upstream error. */
export const UpstreamCodes = {
  success: 0,
  requestFailed: -1,
  parameterException: 9000,
  systemBusy: 9001,
  notAnIntegrator: 9007,
  appkeyNotFound: 9008,
  appkeyOfAnotherCustomer: 9010,
} as const

// 1000–100X are documented as "authentication issue"; the whole 1000–1099 block is reserved for it.
const AUTHENTICATION_CODES = { first: 1000, last: 1099 }

// NxCloud's "request failed" and "system busy": worth another attempt, unlike the codes about the request.
const TRANSIENT_CODES = new Set<number>([UpstreamCodes.requestFailed, UpstreamCodes.systemBusy])

// Answers about the request or the tenant, not about NxCloud's health.
const ABOUT_THE_REQUEST_CODES = new Set<number>([
  UpstreamCodes.parameterException, UpstreamCodes.appkeyNotFound, UpstreamCodes.appkeyOfAnotherCustomer,
])

const KNOWN_CODES = new Set<number>(Object.values(UpstreamCodes))

// NxCloud's own word on the tenant: it does not exist, or it is another customer's.
const ABOUT_THE_TENANT_CODES = new Set<number>([UpstreamCodes.appkeyNotFound, UpstreamCodes.appkeyOfAnotherCustomer])

export function isAuthenticationCode (code: number): boolean {
  return (code >= AUTHENTICATION_CODES.first && code <= AUTHENTICATION_CODES.last) ||
    code === UpstreamCodes.notAnIntegrator
}

export function isTransientCode (code: number): boolean {
  return TRANSIENT_CODES.has(code)
}

export function isCodeAboutTheRequest (code: number): boolean {
  return ABOUT_THE_REQUEST_CODES.has(code)
}

export function isCodeAboutTheTenant (code: number): boolean {
  return ABOUT_THE_TENANT_CODES.has(code)
}

/** A code NxCloud documents (the table above, or the authentication block): a bounded set, fit for a label. */
export function isDocumentedCode (code: number): boolean {
  return KNOWN_CODES.has(code) || isAuthenticationCode(code)
}
