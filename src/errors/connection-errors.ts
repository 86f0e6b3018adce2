import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HttpHeaders } from '../http/headers.js'
import { pathOf } from '../http/request-path.js'
import { logAccess, newRequestId, REQUEST_ID_LOG_LABEL, requestIdGivenTo, requestIdOf } from '../logging/request-logging.js'
import { ProblemExamples } from './problem-examples.js'
import { problemBody, PROBLEM_CONTENT_TYPE, type ProblemBody } from './problem-schema.js'
import type { ProblemKind } from './problem-types.js'

// Node's HTTP parser and request timers, and what each becomes (Node's own answers: 408, 431, else 400).
const PARSER_ERROR_KINDS: Record<string, ProblemKind> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'requestTimeout',
  HPE_HEADER_OVERFLOW: 'requestHeadTooLarge',
}

// Node checks the same private field before answering a client error itself: once an answer has begun on
// the socket, anything written would be read as part of it.
interface HttpSocket extends Socket {
  _httpMessage?: ServerResponse | null
}

/**
 * Fastify's `clientErrorHandler`: what Node's HTTP layer refuses before Fastify sees a request (a malformed
 * request, a head over the size limit, a request or its headers too slow) is answered as a problem with
 * its own request id, logged once, and the connection is closed, as Node itself would.
 */
export function answerClientError (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  const pending = (socket as HttpSocket)._httpMessage
  // The peer hung up, or an answer is already under way: there is no one, or no room, to answer.
  if (error.code === 'ECONNRESET' || !socket.writable || pending?.headersSent === true) {
    this.log.debug({ err: { code: error.code, message: error.message } }, 'connection closed on a client error')
    socket.destroy()
    return
  }
  const kind = PARSER_ERROR_KINDS[error.code ?? '']
  // A request whose head arrived (its body did not) keeps the id it was given; the client reads this answer as its.
  const requestId = pending === undefined || pending === null ? newRequestId() : requestIdGivenTo(pending.req)
  const problem = kind === undefined
    ? problemBody('invalidRequest', { detail: `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'})`, instance: undefined, requestId })
    : problemBody(kind, { detail: ProblemExamples[kind].detail, instance: undefined, requestId })
  socket.write(rawAnswer(problem))
  socket.destroy()
  this.log.info({ [REQUEST_ID_LOG_LABEL]: requestId, statusCode: problem.status, code: error.code }, 'client error answered')
}

function rawAnswer (problem: ProblemBody): string {
  const body = JSON.stringify(problem)
  const lines = Object.entries(closingProblemHeaders(problem, body)).map(([name, value]) => `${name}: ${value}`)
  return `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\n${lines.join('\r\n')}\r\n\r\n${body}`
}

// Every answer of Node's HTTP layer closes its connection: what the client sends next cannot be read as a request.
function closingProblemHeaders (problem: ProblemBody, body: string): Record<string, string | number> {
  return {
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    [HttpHeaders.requestId.name]: problem.requestId,
    [HttpHeaders.contentTypeOptions.name]: HttpHeaders.contentTypeOptions.value,
    [HttpHeaders.connection.name]: HttpHeaders.connection.value,
  }
}

/**
 * Node's `checkExpectation`: a request whose Expect is not 100-continue (which Node meets itself with
 * `100 Continue`) would get Node's bodiless 417. It is answered as a problem instead, with the request id
 * it would have had, logged once; the connection is closed, since the client may or may not send the
 * content it announced. No route runs.
 */
export function answerUnmetExpectation (log: FastifyBaseLogger, request: IncomingMessage, response: ServerResponse): void {
  const requestId = requestIdOf(request)
  const kind = 'expectationFailed'
  const problem = problemBody(kind, { detail: ProblemExamples[kind].detail, instance: pathOf(request.url ?? '/'), requestId })
  const body = JSON.stringify(problem)
  response.writeHead(problem.status, closingProblemHeaders(problem, body)).end(body)
  log.info({ [REQUEST_ID_LOG_LABEL]: requestId, method: request.method, url: request.url, statusCode: problem.status }, 'expectation refused')
}

/**
 * Fastify's `frameworkErrors`: what the router refuses before a route runs (a path that is not valid
 * percent-encoding) reaches neither the error handler nor the onRequest hooks, and Fastify does not log
 * it as it logs a routed request: it is stamped and logged here.
 */
export function answerFrameworkError (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const routerRefused = error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH'
  const occurrence = { instance: pathOf(request.url), requestId: request.id }
  const problem = routerRefused
    ? problemBody('invalidRequest', { detail: 'The path is not valid: a malformed percent-encoding, or a segment that is too long', ...occurrence })
    : problemBody('internal', { detail: ProblemExamples.internal.detail, ...occurrence })
  reply.header(HttpHeaders.requestId.name, request.id)
    .header(HttpHeaders.contentTypeOptions.name, HttpHeaders.contentTypeOptions.value)
    .code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem)
  logAccess(routerRefused ? undefined : error, request, reply)
}
