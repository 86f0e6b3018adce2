import { hostname } from 'node:os'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { activeTraceIds } from '../observability/tracing.js'
import { LogLevels, REQUEST_ID_LOG_LABEL } from './log-facts.js'

/** Where access lines go: pino's own destination (SonicBoom), or any writable a test passes. */
export interface AccessLogStream {
  write (line: string): unknown
}

export interface AccessLog {
  /** Writes the one line of a completed request: `info` for an answer, `error` with the error otherwise. */
  requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void
  /** The same `info` line for an answer given outside Fastify (the hit lane), from its fields. */
  answered (answer: AnsweredRequest): void
}

/** What the access line says of an answered request. */
export interface AnsweredRequest {
  requestId: string
  method: string
  url: string
  statusCode: number
  responseTimeMs: number
  cache: string | undefined
  callerId: string | undefined
}

const COMPLETED_MESSAGE = 'request completed'

/**
 * The access log: one line per request, the line pino would write for
 * `log.info({ requestId, method, url, statusCode, responseTimeMs, cache, callerId }, 'request completed')`,
 * byte for byte, but shaped as one string and handed straight to the logger's destination. Going
 * through pino costs a serialisation of an object built for it, and Fastify's per-request child
 * logger a second one: together as much as the rest of a cache hit. Errored requests, rare, still go
 * through pino (its error serialiser and redaction).
 */
export function createAccessLog (logger: Logger, stream: AccessLogStream): AccessLog {
  // pino's key order: level, time, its base bindings (pid, hostname), the mixin's fields (trace ids), then ours.
  const afterHostname = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`
  const requestIdLabel = `,"${REQUEST_ID_LOG_LABEL}":`
  const clock = new MillisecondText()
  const writeLine = (answer: AnsweredRequest): void => {
    stream.write(`{"level":${LogLevels.info},"time":${clock.now()}${afterHostname}${traceFields()}${requestIdLabel}${lineFields(answer)},"msg":"${COMPLETED_MESSAGE}"}\n`)
  }
  return {
    requestCompleted (error, request, reply) {
      if (error) {
        const { requestId, responseTimeMs, ...fields } = fieldsOf(request, reply)
        request.server.log.error({ [REQUEST_ID_LOG_LABEL]: requestId, ...fields, responseTimeMs: roundedMs(responseTimeMs), err: error }, 'request errored')
        return
      }
      if (!isLoggedAtInfo(logger, request, reply.statusCode)) return
      writeLine(fieldsOf(request, reply))
    },
    answered (answer) {
      if (logger.isLevelEnabled('info')) writeLine(answer)
    },
  }
}

// What the logger's mixin adds to every line while a trace is active (see observability/tracing.ts).
function traceFields (): string {
  const ids = activeTraceIds()
  return ids === undefined ? '' : `,"traceId":"${ids.traceId}","spanId":"${ids.spanId}"`
}

// requestId is a plain token (see request-logging.ts) and method an HTTP token: neither needs JSON escaping.
function lineFields (answer: AnsweredRequest): string {
  const { cache, callerId } = answer
  return `"${answer.requestId}","method":"${answer.method}","url":${JSON.stringify(answer.url)},"statusCode":${answer.statusCode}` +
    `,"responseTimeMs":${hundredthsText(answer.responseTimeMs)}` +
    (cache === undefined ? '' : `,"cache":"${cache}"`) +
    (callerId === undefined ? '' : `,"callerId":${JSON.stringify(callerId)}`)
}

function roundedMs (ms: number): number {
  return Math.round(ms * 100) / 100
}

/**
 * `String(roundedMs(ms))` for a duration, from integers: printing a fraction costs V8 a
 * shortest-round-trip conversion, several times an integer's, on every line.
 */
export function hundredthsText (ms: number): string {
  const hundredths = Math.round(ms * 100)
  if (!Number.isSafeInteger(hundredths) || hundredths < 0) return String(roundedMs(ms))
  const whole = Math.floor(hundredths / 100)
  const fraction = hundredths - whole * 100
  if (fraction === 0) return `${whole}`
  if (fraction % 10 === 0) return `${whole}.${fraction / 10}`
  return `${whole}.${fraction < 10 ? '0' : ''}${fraction}`
}

/** `Date.now()` as text, converted once per millisecond: many lines share one at a high request rate. */
class MillisecondText {
  #ms = -1
  #text = ''

  now (): string {
    const ms = Date.now()
    if (ms !== this.#ms) {
      this.#ms = ms
      this.#text = String(ms)
    }
    return this.#text
  }
}

function fieldsOf (request: FastifyRequest, reply: FastifyReply): AnsweredRequest {
  const cache = reply.getHeader('x-cache')
  return {
    requestId: request.id,
    method: request.method,
    url: request.url,
    statusCode: reply.statusCode,
    responseTimeMs: reply.elapsedTime,
    cache: typeof cache === 'string' ? cache : undefined,
    callerId: request.caller?.id,
  }
}

/**
 * `info` must be on for the service, and for the route: a route with a level above `info` of its own
 * (`logLevel: 'warn'` on the liveness probe) does not log its successful answers, as Fastify drops
 * everything else the route logs below that level; its failed answers are still logged.
 */
function isLoggedAtInfo (logger: Logger, request: FastifyRequest, statusCode: number): boolean {
  if (!logger.isLevelEnabled('info')) return false
  const routeLevel = request.routeOptions.logLevel
  return statusCode >= 400 || !routeLevel || (LogLevels[routeLevel as keyof typeof LogLevels] ?? 0) <= LogLevels.info
}
