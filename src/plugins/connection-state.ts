import fp from 'fastify-plugin'
import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { ProblemError } from '../errors/problem-error.js'
import { createConnectionBackpressure, type ConnectionBackpressure } from '../http/connection-backpressure.js'
import { HttpHeaders } from '../http/headers.js'
import { closeInStages } from '../http/lingering-close.js'

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

export interface ConnectionStateOptions {
  /** HTTP_MAX_UNSENT_BYTES_PER_CONNECTION: past it, a connection's pipelined requests wait and it is not read from. */
  maxUnsentBytesPerConnection: number
  /** HTTP_CLOSE_LINGER_MS: how long a connection the server closes is still read from, for its client to read the last answers. */
  closeLingerMs: number
}

/**
 * The first look at every routed request, in one onRequest hook because every hook is paid by every
 * request: the answer is stamped with its request id and `nosniff` before anything can fail (Fastify
 * keeps a reply's headers through its error path, and what the router refuses is stamped where it is
 * answered), and a request without Host is refused. A request pipelined behind answers its client has
 * not read waits there while they weigh more than the bound (src/http/connection-backpressure.ts). It
 * also drains instead of refusing: requests keep being served while the server closes, each answer
 * telling its client to reconnect elsewhere (`Connection: close`). Without that, a keep-alive socket left
 * idle after its last answer would hold `close()` open until it timed out. The same holds during the
 * drain before `close()`: a client that keeps a connection open past the load balancer (an L4 one such
 * as kube-proxy pins it to this instance) moves on after its next answer, instead of losing a request to
 * the idle sockets `close()` ends.
 */
export const connectionStatePlugin = fp<ConnectionStateOptions>(async function connectionState (app, options) {
  let shuttingDown = false
  // Node's maxRequestsPerSocket announces `Connection: close` on the last answer but keeps the socket open,
  // answering whatever follows with bodiless 503s (its documented behaviour). Saying close ourselves makes
  // Node close the socket after that answer (in stages: src/http/lingering-close.ts), and the requests
  // pipelined past the cap are never answered.
  const maxRequestsPerSocket = app.server.maxRequestsPerSocket ?? 0
  const backpressure = createConnectionBackpressure(options.maxUnsentBytesPerConnection)
  const connections = trackConnections(app.server, (socket) => { closeInStages(socket, options.closeLingerMs, backpressure.abandon) })
  const shutDown = () => {
    shuttingDown = true
    askInFlightAnswersToClose(connections, backpressure)
  }
  app.decorate('isShuttingDown', () => shuttingDown)
  app.decorate('beginShutdown', shutDown)
  const isLastAnswerOn = (socket: Socket) => maxRequestsPerSocket > 0 && isLastAnswer(socket, maxRequestsPerSocket)
  app.addHook('preClose', async () => { shutDown() })
  // After any wait, so that an answer made once the shutdown began says close, however long it queued.
  const admit = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (shuttingDown || isLastAnswerOn(request.raw.socket)) {
      reply.header(HttpHeaders.connection.name, HttpHeaders.connection.value)
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400. Node would answer it itself, with no body
    // and no request id (app.ts turns that off), so it is refused here like any other invalid request.
    if (request.raw.headers.host === undefined && request.raw.httpVersion === '1.1') {
      done(new ProblemError('invalidRequest', 'An HTTP/1.1 request must carry a Host header'))
      return
    }
    done()
  }
  app.addHook('onRequest', function stampAnswer (request, reply, done) {
    reply.header(HttpHeaders.requestId.name, request.id)
    reply.header(HttpHeaders.contentTypeOptions.name, HttpHeaders.contentTypeOptions.value)
    if (backpressure.mustWait(reply.raw)) backpressure.wait(request.raw, reply.raw, () => { admit(request, reply, done) })
    else admit(request, reply, done)
  })
}, { name: 'connection-state' })

// Tracked per connection, not per request: a keep-alive connection carries many requests.
function trackConnections (server: Server, onConnection: (socket: Socket) => void): Set<Socket> {
  const connections = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    onConnection(socket)
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
  })
  return connections
}

/**
 * Requests already past the stamp when the shutdown begins are answered with `Connection: close` too:
 * a socket's current response is Node's `_httpMessage` (long-standing, though undocumented), and the
 * pipelined ones behind it are those the backpressure let through.
 */
function askInFlightAnswersToClose (connections: Set<Socket>, backpressure: ConnectionBackpressure): void {
  for (const socket of connections) {
    const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
    if (response) askToClose(response)
    for (const queued of backpressure.queuedAnswers(socket)) askToClose(queued)
  }
}

function askToClose (response: ServerResponse): void {
  if (!response.headersSent) response.setHeader(HttpHeaders.connection.name, HttpHeaders.connection.value)
}

function isLastAnswer (socket: CountedSocket, maxRequestsPerSocket: number): boolean {
  const answers = (socket[ANSWERS_ON_SOCKET] ?? 0) + 1
  socket[ANSWERS_ON_SOCKET] = answers
  return answers >= maxRequestsPerSocket
}
