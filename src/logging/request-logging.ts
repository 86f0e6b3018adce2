import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'fastify/types/logger.js'
import type { Logger } from 'pino'
import type { AccessLog } from './access-log.js'
import { HttpHeaders } from '../http/headers.js'
import { REQUEST_ID_LOG_LABEL } from './log-facts.js'

export { REQUEST_ID_LOG_LABEL } from './log-facts.js'

// Ids from callers are echoed into logs and headers, so only a plain, bounded token is taken as is.
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
export const REQUEST_ID_HEADER = HttpHeaders.requestId.name

const GIVEN_REQUEST_ID = Symbol('givenRequestId')

interface IdentifiedRequest extends IncomingMessage {
  [GIVEN_REQUEST_ID]?: string
}

// Our own ids: a random prefix per process and a counter. Unique across instances and restarts
// (64 random bits), as cheap as Fastify's default counter; a request id is a correlation handle, never a secret.
const PROCESS_ID_PREFIX = randomBytes(8).toString('base64url')
let requestsIdentified = 0

/** A fresh request id. */
export function newRequestId (): string {
  return `${PROCESS_ID_PREFIX}-${(++requestsIdentified).toString(36)}`
}

/** Fastify's `genReqId`: the caller's X-Request-Id when it is well-formed, a fresh id otherwise. */
export function requestIdOf (request: IncomingMessage): string {
  const given = request.headers[REQUEST_ID_HEADER]
  const id = typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : newRequestId()
  // Kept on the raw request so that an answer Node's HTTP layer forces (a timeout mid-body) carries the same id.
  ;(request as IdentifiedRequest)[GIVEN_REQUEST_ID] = id
  return id
}

/** The id a raw request was given by `requestIdOf`, or a new one for a request Fastify never saw. */
export function requestIdGivenTo (request: IncomingMessage): string {
  return (request as IdentifiedRequest)[GIVEN_REQUEST_ID] ?? requestIdOf(request)
}

/** One access line per request, when it completes (see `createAccessLog`); nothing when it arrives. */
export class RequestLogController extends LogController {
  readonly #accessLog: AccessLog

  constructor (accessLog: AccessLog) {
    super({ requestIdLogLabel: REQUEST_ID_LOG_LABEL })
    this.#accessLog = accessLog
  }

  override incomingRequest (): void {}

  // The 404 and 405 answers are logged by requestCompleted like any other: one line per answer.
  override routeNotFound (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    request.server.metrics.observeRequest(request, reply)
    this.#accessLog.requestCompleted(error, request, reply)
  }
}

type LogArguments = unknown[]
type LevelMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/**
 * Fastify gives every request a child logger bound to its id. Building one costs more than the rest
 * of a cache hit, and most requests never log through it: this stand-in is the whole pino logger API,
 * building the real child on first use. What can be answered without it (is a level on?) is.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  #child: Logger<string> | undefined
  readonly #parent: Logger<string>
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    // Fastify's logger type names only what Fastify itself calls; ours is always pino.
    this.#parent = parent as Logger<string>
    this.#bindings = bindings
    this.#options = options
  }

  get level (): string { return this.#child?.level ?? this.#options.level ?? this.#parent.level }
  set level (level: string) { this.#resolve().level = level }
  get levelVal (): number { return this.#logger().levelVal }
  get levels () { return this.#parent.levels }
  get msgPrefix (): string | undefined { return this.#logger().msgPrefix }

  isLevelEnabled (level: string): boolean {
    return this.#logger().isLevelEnabled(level)
  }

  bindings (): Bindings { return this.#resolve().bindings() }
  setBindings (bindings: Bindings): void { this.#resolve().setBindings(bindings) }
  flush (callback?: (error?: Error) => void): void { this.#parent.flush(callback) }

  fatal (...args: LogArguments): void { this.#call('fatal', args) }
  error (...args: LogArguments): void { this.#call('error', args) }
  warn (...args: LogArguments): void { this.#call('warn', args) }
  info (...args: LogArguments): void { this.#call('info', args) }
  debug (...args: LogArguments): void { this.#call('debug', args) }
  trace (...args: LogArguments): void { this.#call('trace', args) }
  silent (...args: LogArguments): void { this.#call('silent', args) }

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#resolve().child(bindings, options)
  }

  #call (method: LevelMethod, args: LogArguments): void {
    const child = this.#resolve()
    Reflect.apply(child[method], child, args)
  }

  // The child when it exists or has a level of its own; the parent answers alike otherwise.
  #logger (): Logger<string> {
    return this.#child ?? (this.#options.level === undefined ? this.#parent : this.#resolve())
  }

  #resolve (): Logger<string> {
    this.#child ??= this.#parent.child(this.#bindings, this.#options as Parameters<Logger['child']>[1])
    return this.#child
  }
}

/** Fastify's `childLoggerFactory`. */
export function lazyChildLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options)
}
