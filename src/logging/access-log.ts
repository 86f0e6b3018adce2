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
  return {
    requestCompleted (error, request, reply) {
      if (error) {
        request.server.log.error({ ...fieldsOf(request, reply), err: error }, 'request errored')
        return
      }
      if (!isLoggedAtInfo(logger, request, reply.statusCode)) return
      stream.write(`{"level":${LogLevels.info},"time":${Date.now()}${afterHostname}${traceFields()}${requestIdLabel}${lineFields(request, reply)},"msg":"${COMPLETED_MESSAGE}"}\n`)
    },
  }
}

// What the logger's mixin adds to every line while a trace is active (see observability/tracing.ts).
function traceFields (): string {
  const ids = activeTraceIds()
  return ids === undefined ? '' : `,"traceId":"${ids.traceId}","spanId":"${ids.spanId}"`
}

// requestId is a plain token (see request-logging.ts) and method an HTTP token: neither needs JSON escaping.
function lineFields (request: FastifyRequest, reply: FastifyReply): string {
  const cache = reply.getHeader('x-cache')
  const callerId = request.caller?.id
  return `"${request.id}","method":"${request.method}","url":${JSON.stringify(request.url)},"statusCode":${reply.statusCode}` +
    `,"responseTimeMs":${Math.round(reply.elapsedTime * 100) / 100}` +
    (typeof cache === 'string' ? `,"cache":"${cache}"` : '') +
    (callerId === undefined ? '' : `,"callerId":${JSON.stringify(callerId)}`)
}

function fieldsOf (request: FastifyRequest, reply: FastifyReply) {
  return {
    [REQUEST_ID_LOG_LABEL]: request.id,
    method: request.method,
    url: request.url,
    statusCode: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
    cache: reply.getHeader('x-cache'),
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
