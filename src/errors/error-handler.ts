import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { NxCloudError } from '../nxcloud/nxcloud-error.js'
import { problemOf } from './nxcloud-problems.js'
import { ProblemError } from './problem-error.js'
import { ProblemTypes } from './problem-types.js'
import { ProblemExamples } from './problem-examples.js'
import { problemBody, PROBLEM_CONTENT_TYPE, type ProblemBody } from './problem-schema.js'
import { HttpHeaders } from '../http/headers.js'
import { pathOf } from '../http/request-path.js'
import { RouteMethods } from './route-methods.js'
import { answerUnmetExpectation } from './connection-errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route answers RFC 9211 Cache-Status on every answer, its errors included. */
    reportsCacheStatus?: boolean
  }
}

const CACHE_BYPASSED = 'nxcloud-bff; fwd=bypass'

/** One place turns every error into an RFC 9457 answer; 5xx details never carry internals. */
export const errorHandlerPlugin = fp(async function errorHandler (app) {
  app.setErrorHandler((thrown: FastifyError | ProblemError | NxCloudError, request, reply) => {
    // The connection is gone (the client hung up, or a request timeout cut its body and answered 408
    // itself): nothing can be answered here.
    if (request.raw.socket?.destroyed === true) {
      request.log.debug({ err: thrown }, 'connection closed before the answer')
      return
    }
    // The NxCloud client speaks NxCloud; here, at the edge, its failures become problems.
    const error = thrown instanceof NxCloudError ? problemOf(thrown) : thrown
    const problem = problemFor(error, request)
    if (error instanceof ProblemError && error.headers !== undefined) reply.headers(error.headers)
    // Refused before the cache was asked (credentials, limits, validation): RFC 9211 calls that a bypass.
    if (request.routeOptions.config.reportsCacheStatus === true && !reply.hasHeader(HttpHeaders.cacheStatus.name)) {
      reply.header(HttpHeaders.cacheStatus.name, CACHE_BYPASSED)
    }
    if (problem.status >= 500 && !(error instanceof ProblemError)) {
      request.log.error({ err: error }, 'unexpected error')
    }
    return sendProblem(reply, problem)
  })

  // Node's HTTP layer answers an Expect it cannot meet before Fastify sees the request: a listener makes it a problem.
  app.server.on('checkExpectation', (request, response) => { answerUnmetExpectation(app.log, request, response) })

  const routeMethods = new RouteMethods()
  app.addHook('onRoute', (route) => { routeMethods.add(route.method, route.url) })

  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request.url)
    const allowed = routeMethods.allowedOn(path)
    const kind = allowed.length > 0 && !allowed.includes(request.method) ? 'methodNotAllowed' : 'routeNotFound'
    if (kind === 'methodNotAllowed') reply.header(HttpHeaders.allow.name, allowed.join(', '))
    return sendProblem(reply, problemBody(kind, {
      detail: kind === 'methodNotAllowed' ? `${path} answers ${allowed.join(', ')}, not ${request.method}` : `No route ${request.method} ${path}`,
      instance: path,
      requestId: request.id,
    }))
  })
}, { name: 'error-handler' })

function problemFor (error: FastifyError | ProblemError, request: FastifyRequest): ProblemBody {
  const occurrence = { detail: error.message, instance: pathOf(request.url), requestId: request.id }
  if (error instanceof ProblemError) return problemBody(error.kind, { ...occurrence, upstreamCode: error.upstreamCode })
  const status = error.statusCode ?? 500
  // Fastify's own 400s (validation, a body that is not JSON...) are the kind the routes' 400 schema names.
  if (error.validation !== undefined || status === ProblemTypes.invalidRequest.status) return problemBody('invalidRequest', occurrence)
  if (status >= 400 && status < 500) {
    // A client error Fastify itself raised (unsupported media type, body too large...): RFC 9457's plain kind.
    return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Client error', status, ...occurrence }
  }
  return problemBody('internal', { ...occurrence, detail: ProblemExamples.internal.detail })
}

function sendProblem (reply: FastifyReply, problem: ProblemBody): FastifyReply {
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem)
}
