import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { HttpHeaders } from '../http/headers.js'

/** The request id's name in every log line of a request (Fastify's `requestIdLogLabel`). */
export const REQUEST_ID_LOG_LABEL = 'requestId'

// Ids from callers are echoed into logs and headers, so only a plain, bounded token is taken as is.
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

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
  const given = request.headers[HttpHeaders.requestId.name]
  const id = typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : newRequestId()
  // Kept on the raw request so that an answer Node's HTTP layer forces (a timeout mid-body) carries the same id.
  ;(request as IdentifiedRequest)[GIVEN_REQUEST_ID] = id
  return id
}

/** The id a raw request was given by `requestIdOf`, or a new one for a request Fastify never saw. */
export function requestIdGivenTo (request: IncomingMessage): string {
  return (request as IdentifiedRequest)[GIVEN_REQUEST_ID] ?? requestIdOf(request)
}

const COMPLETED = 'request completed'
const ERRORED = 'request errored'

/**
 * Fastify's log controller with one access line per request, written when it completes through the
 * request's own logger (pino formats it; redaction applies): the request's id (the logger's binding),
 * method, url, status, response time, where the answer came from (X-Cache) and who asked. Nothing is
 * logged when a request arrives, nor for a 404 apart from its access line.
 */
export class AccessLogController extends LogController {
  constructor () {
    super({ requestIdLogLabel: REQUEST_ID_LOG_LABEL })
  }

  override incomingRequest (): void {}

  override routeNotFound (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    logAccess(error, request, reply)
  }
}

/** The access line of a request, also for the answers Fastify gives without a route (its `frameworkErrors`). */
export function logAccess (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
  if (error) {
    reply.log.error({ ...accessFieldsOf(request, reply), err: error }, ERRORED)
    return
  }
  if (logsInfo(reply.log)) {
    reply.log.info(accessFieldsOf(request, reply), COMPLETED)
  } else if (reply.statusCode >= 400 && logsInfo(request.server.log)) {
    // A route quieter than info (the liveness probe) keeps its answers out of the log, not its failures.
    request.server.log.info({ [REQUEST_ID_LOG_LABEL]: request.id, ...accessFieldsOf(request, reply) }, COMPLETED)
  }
}

// Fastify's logger type names only what Fastify itself calls; this one is always pino.
function logsInfo (log: FastifyBaseLogger): boolean {
  return (log as Logger).isLevelEnabled('info')
}

function accessFieldsOf (request: FastifyRequest, reply: FastifyReply) {
  const cache = reply.getHeader(HttpHeaders.cache.name)
  return {
    method: request.method,
    url: request.url,
    statusCode: reply.statusCode,
    responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
    cache: typeof cache === 'string' ? cache : undefined,
    callerId: request.caller?.id,
  }
}
