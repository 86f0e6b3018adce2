import fp from 'fastify-plugin'
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

// Ids from callers are echoed into logs and headers, so only a plain, bounded token is taken as is.
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
export const REQUEST_ID_HEADER = 'x-request-id'

/** Fastify's `genReqId`: the caller's X-Request-Id when it is well-formed, a fresh UUID otherwise. */
export function requestIdOf (request: IncomingMessage): string {
  const given = request.headers[REQUEST_ID_HEADER]
  return typeof given === 'string' && ACCEPTED_REQUEST_ID.test(given) ? given : randomUUID()
}

/** One log line per request, written when it completes, with its latency and cache result. */
export class RequestLogController extends LogController {
  constructor () {
    super({ requestIdLogLabel: 'requestId' })
  }

  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const cache = reply.getHeader('x-cache')
    const line = {
      method: request.method,
      url: request.url,
      statusCode: reply.statusCode,
      responseTimeMs: Math.round(reply.elapsedTime * 100) / 100,
      ...(cache === undefined ? {} : { cache }),
    }
    if (error) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request completed')
  }
}

/** Returns the request id on every answer, errors included, so callers can quote it. */
export const requestIdPlugin = fp(async function requestId (app) {
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id)
  })
}, { name: 'request-id' })
