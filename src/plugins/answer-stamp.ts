import fp from 'fastify-plugin'
import type { Socket } from 'node:net'
import { REQUEST_ID_HEADER } from './request-logging.js'

const ANSWERS_ON_SOCKET = Symbol('answersOnSocket')

interface CountedSocket extends Socket {
  [ANSWERS_ON_SOCKET]?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** True once the shutdown has begun (`beginShutdown()` or `close()`): readiness fails and connections are not kept alive. */
    isShuttingDown (): boolean
    /** Starts the drain before `close()`: readiness fails and answers ask clients to reconnect, while the listener still serves. */
    beginShutdown (): void
  }
}

/**
 * Stamps every answer, errors included, with its request id and `nosniff`, and drains instead of refusing:
 * requests already on their way keep being served while the server closes, each answer telling its
 * client to reconnect elsewhere (`Connection: close`). Without that, a keep-alive socket left idle
 * after its last answer would hold `close()` open until it timed out. The same holds during the drain
 * before `close()`: a client that keeps a connection open past the load balancer (an L4 one such as
 * kube-proxy pins it to this instance) moves on after its next answer, instead of losing a request to
 * the idle sockets `close()` ends. Both live in one onSend hook because every hook is paid by every request.
 */
export const answerStampPlugin = fp(async function answerStamp (app) {
  let shuttingDown = false
  // Node's maxRequestsPerSocket announces `Connection: close` on the last answer but keeps the socket open,
  // answering whatever follows with bodiless 503s (its documented behaviour). Saying close ourselves makes
  // Node close the socket after that answer, and the requests it dropped past the cap are never answered.
  const maxRequestsPerSocket = app.server.maxRequestsPerSocket ?? 0
  app.decorate('isShuttingDown', () => shuttingDown)
  app.decorate('beginShutdown', () => { shuttingDown = true })
  app.addHook('preClose', async () => { shuttingDown = true })
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header(REQUEST_ID_HEADER, request.id)
    // Browsers must never guess a type for our JSON (or a problem) and render it as something else.
    reply.header('x-content-type-options', 'nosniff')
    if (shuttingDown || (maxRequestsPerSocket > 0 && isLastAnswer(request.raw.socket, maxRequestsPerSocket))) {
      reply.header('connection', 'close')
    }
    done(null, payload)
  })
}, { name: 'answer-stamp' })

function isLastAnswer (socket: CountedSocket, maxRequestsPerSocket: number): boolean {
  const answers = (socket[ANSWERS_ON_SOCKET] ?? 0) + 1
  socket[ANSWERS_ON_SOCKET] = answers
  return answers >= maxRequestsPerSocket
}
