import { isCodeAboutTheRequest, isCodeAboutTheTenant, isTransientCode } from './upstream-codes.js'

/**
 * How a call to NxCloud failed: NxCloud answered a non-zero code (`nxcloud-error`), did not answer
 * in time, could not be reached, answered something that is not an envelope of the expected shape
 * or a non-2xx status; or the call was refused before it went out (breaker open, over capacity).
 */
export type NxCloudFailureKind =
  | 'nxcloud-error'
  | 'timeout'
  | 'unreachable'
  | 'invalid-response'
  | 'http-status'
  | 'breaker-open'
  | 'shed'

export interface NxCloudErrorOptions {
  /** The envelope's `code`, when NxCloud answered one. */
  code?: number
  /** The envelope's `message`, NxCloud's own words. */
  upstreamMessage?: string | undefined
  /** The HTTP status of a non-2xx answer. */
  httpStatus?: number
  /** For calls refused before they went out: when one may be tried again. */
  retryAfterSeconds?: number
  cause?: unknown
}

const HTTP_SERVER_ERROR = 500

/** A failed NxCloud call, in NxCloud's terms; what the caller is told is decided in errors/. */
export class NxCloudError extends Error {
  readonly kind: NxCloudFailureKind
  readonly code: number | undefined
  readonly upstreamMessage: string | undefined
  readonly httpStatus: number | undefined
  readonly retryAfterSeconds: number | undefined

  constructor (kind: NxCloudFailureKind, message: string, options: NxCloudErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'NxCloudError'
    this.kind = kind
    this.code = options.code
    this.upstreamMessage = options.upstreamMessage
    this.httpStatus = options.httpStatus
    this.retryAfterSeconds = options.retryAfterSeconds
  }

  /** NxCloud answered with a code. */
  static ofCode (code: number, upstreamMessage: string | undefined): NxCloudError {
    return new NxCloudError('nxcloud-error', `NxCloud answered code ${code}: ${upstreamMessage ?? 'no message'}`, { code, upstreamMessage })
  }

  /** Worth another attempt within the budget: a broken connection, an HTTP 5xx, codes -1 and 9001. */
  get transient (): boolean {
    switch (this.kind) {
      case 'unreachable': return true
      case 'http-status': return (this.httpStatus ?? 0) >= HTTP_SERVER_ERROR
      case 'nxcloud-error': return this.code !== undefined && isTransientCode(this.code)
      default: return false
    }
  }

  /** Refused here before any attempt went out: the breaker is open, or too many calls are under way. */
  get refused (): boolean {
    return this.kind === 'breaker-open' || this.kind === 'shed'
  }

  /**
   * NxCloud's own failure, which the circuit breaker counts: it timed out, could not be reached, answered
   * something that is not a phone list, or a code that is not about the request (its verdict on our
   * credentials included). Never a call refused here, nor an answer about the request or the tenant.
   */
  get nxcloudFault (): boolean {
    return !this.refused && !this.aboutTheRequest
  }

  /** NxCloud answered about the request or the tenant (9000, 9008, 9010): it says nothing of NxCloud's health. */
  get aboutTheRequest (): boolean {
    return this.code !== undefined && isCodeAboutTheRequest(this.code)
  }

  /** NxCloud's own word on the tenant (9008, 9010): a cached list of it is no longer to be served. */
  get aboutTheTenant (): boolean {
    return this.code !== undefined && isCodeAboutTheTenant(this.code)
  }
}
