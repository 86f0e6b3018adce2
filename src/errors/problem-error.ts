import { ProblemTypes, type ProblemKind } from './problem-types.js'

export interface ProblemErrorOptions {
  /** The `code` NxCloud answered with, when it answered with one. */
  upstreamCode?: number | undefined
  /** Headers the answer carries besides the problem (Retry-After, the cache's own). */
  headers?: Record<string, string | number> | undefined
  cause?: unknown
}

/** An outcome we foresaw, carrying the kind of problem response it becomes. */
export class ProblemError extends Error {
  readonly kind: ProblemKind
  readonly upstreamCode: number | undefined
  readonly headers: Record<string, string | number> | undefined

  constructor (kind: ProblemKind, detail: string, options: ProblemErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ProblemError'
    this.kind = kind
    this.upstreamCode = options.upstreamCode
    this.headers = options.headers
  }

  get statusCode (): number {
    return ProblemTypes[this.kind].status
  }
}
