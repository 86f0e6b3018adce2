import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Bindings, ChildLoggerOptions } from 'fastify/types/logger.js'

// Ids from callers are echoed into logs and headers, so only a plain, bounded token is taken as is.
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
export const REQUEST_ID_HEADER = 'x-request-id'
export const REQUEST_ID_LOG_LABEL = 'requestId'

const GIVEN_REQUEST_ID = Symbol('givenRequestId')

interface IdentifiedRequest extends IncomingMessage {
  [GIVEN_REQUEST_ID]?: string
}

/** Fastify's `genReqId`: the caller's X-Request-Id when it is well-formed, a fresh UUID otherwise. */
export function requestIdOf (request: IncomingMessage): string {
  const given = request.headers[REQUEST_ID_HEADER]
  const id = typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID()
  // Kept on the raw request so that an answer Node's HTTP layer forces (a timeout mid-body) carries the same id.
  ;(request as IdentifiedRequest)[GIVEN_REQUEST_ID] = id
  return id
}

/** The id a raw request was given by `requestIdOf`, or a new one for a request Fastify never saw. */
export function requestIdGivenTo (request: IncomingMessage): string {
  return (request as IdentifiedRequest)[GIVEN_REQUEST_ID] ?? requestIdOf(request)
}

/**
 * One log line per request, written when it completes, with its latency and cache result. It is
 * written through the root logger with the id as a field, so a request that logs nothing else never
 * needs its child logger (see `lazyChildLogger`).
 */
export class RequestLogController extends LogController {
  constructor () {
    super({ requestIdLogLabel: REQUEST_ID_LOG_LABEL })
  }

  override incomingRequest (): void {}

  // The 404 and 405 answers are logged by requestCompleted like any other: one line per answer.
  override routeNotFound (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    logRequestCompleted(error, request, reply)
  }
}

// Pino's numeric levels, for comparing a route's own level with `info`.
const LEVEL_VALUES: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity }
const INFO_LEVEL = 30

/**
 * Writes the one line of a completed request. A route with a log level above `info` of its own
 * (`logLevel: 'warn'` on the liveness probe) does not log its successful answers, as Fastify drops
 * everything else the route logs below that level; its failed answers are still logged.
 */
export function logRequestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
  const routeLevel = request.routeOptions.logLevel
  if (!error && reply.statusCode < 400 && routeLevel && (LEVEL_VALUES[routeLevel] ?? 0) > INFO_LEVEL) return
  const line = {
    [REQUEST_ID_LOG_LABEL]: request.id,
    method: request.method,
    url: request.url,
    statusCode: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
    cache: reply.getHeader('x-cache'),
    callerId: request.caller?.id,
  }
  if (error) request.server.log.error({ ...line, err: error }, 'request errored')
  else request.server.log.info(line, 'request completed')
}

type LogArguments = unknown[]

/**
 * Fastify gives every request a child logger bound to its id. Building it costs more than the rest
 * of a cache hit, and most requests never log through it: this stand-in builds it on first use.
 */
class LazyChildLogger implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  get level (): string { return this.#child?.level ?? this.#options.level ?? this.#parent.level }
  set level (level: string) { this.#resolve().level = level }

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

  #call (method: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent', args: LogArguments): void {
    const child = this.#resolve()
    Reflect.apply(child[method], child, args)
  }

  #resolve (): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }
}

/** Fastify's `childLoggerFactory`. */
export function lazyChildLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options)
}
