import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import { connect, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { buildTestApp, startSimulator, testConfig } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { readUntilClosedByServer } from './raw-http.js'

// The request cap of these connections: small, so that a client easily pipelines past it.
const MAX_REQUESTS = 3
const PIPELINED_PAST_CAP = 4
// 196 KiB of requests, more than Node reads from a connection in one go (64 KiB): the rest stays unread in the kernel.
const PIPELINED_PAST_ONE_READ = 4_000
const HEALTH_REQUEST = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
const CONTRACT_REQUEST = 'GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
// Far longer than any of these tests: when the server closes such a connection, the linger did not end it.
const LINGER_NEVER_REACHED_MS = 600_000
const SHORT_LINGER_MS = 200

interface CappedServer {
  port: number
  /** The server's side of each connection, by the client's port. */
  serverSocketOf (client: Socket): Socket | undefined
  /** Requests the server handed to the app, over every connection. */
  requestsRun (): number
}

async function cappedServer (t: Test, lingerMs: number): Promise<CappedServer> {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, {
    HTTP_MAX_REQUESTS_PER_SOCKET: String(MAX_REQUESTS),
    HTTP_CLOSE_LINGER_MS: String(lingerMs),
  }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const serverSockets = new Map<number, Socket>()
  let requests = 0
  app.server.on('connection', (socket: Socket) => { serverSockets.set(socket.remotePort ?? 0, socket) })
  app.server.on('request', (_request: IncomingMessage) => { requests++ })
  return {
    port: (app.server.address() as AddressInfo).port,
    serverSocketOf: (client) => serverSockets.get(client.localPort ?? 0),
    requestsRun: () => requests,
  }
}

/** A raw client: it pipelines `requests` at once, reads nothing until told, and keeps its side open when the server closes. */
async function pipeliningClient (t: Test, port: number, requests: string): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  t.teardown(() => { socket.destroy() })
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.pause()
  socket.write(requests)
  return socket
}

const capAnswers = Array.from({ length: MAX_REQUESTS }, () => 200)

t.test('a client that pipelined past the request cap and reads only once the server has sent everything gets every answer and a clean end, not a reset', async (t) => {
  const server = await cappedServer(t, LINGER_NEVER_REACHED_MS)
  const client = await pipeliningClient(t, server.port, CONTRACT_REQUEST.repeat(MAX_REQUESTS + PIPELINED_PAST_ONE_READ))
  // Its requests past the cap are unread on the server's side when the last answer has gone, and what this
  // client has not read fills the kernel's buffers: closing the socket then would reset the connection, and
  // the answers still in the server's kernel would be lost.
  const serverSocket = await eventually(() => server.serverSocketOf(client), { what: 'the server to accept the connection' })
  await eventually(() => serverSocket.writableFinished, { what: 'the server to send its last answer and its FIN' })
  const read = await readUntilClosedByServer(client)
  t.same(read.statuses, capAnswers, 'every answer up to the cap')
  t.ok(read.endedCleanly, 'then the end of the connection, without a reset')
  t.equal(server.requestsRun(), MAX_REQUESTS, 'and the requests past the cap were never run')
})

t.test('what a client sends after the last answer is read and dropped, never run, and the socket closes once the client closes its side', async (t) => {
  const server = await cappedServer(t, LINGER_NEVER_REACHED_MS)
  const client = await pipeliningClient(t, server.port, HEALTH_REQUEST.repeat(MAX_REQUESTS))
  const read = await readUntilClosedByServer(client)
  t.same(read.statuses, capAnswers)
  t.ok(read.endedCleanly)
  const serverSocket = server.serverSocketOf(client)
  if (serverSocket === undefined) throw new Error('the server never saw the connection')
  t.notOk(serverSocket.destroyed, 'the server keeps reading the connection after its FIN')

  const bytesReadBefore = serverSocket.bytesRead
  const late = HEALTH_REQUEST.repeat(PIPELINED_PAST_CAP)
  client.write(late)
  await eventually(() => serverSocket.bytesRead >= bytesReadBefore + late.length, { what: 'the server to read the late requests' })
  t.equal(server.requestsRun(), MAX_REQUESTS, 'they are not run')

  client.end()
  await eventually(() => serverSocket.destroyed, { what: 'the server to close the socket once the client closed its side' })
  t.pass('the socket closed long before the linger time')
})

t.test('a client that never closes its side has its connection closed once the linger time has passed', async (t) => {
  const server = await cappedServer(t, SHORT_LINGER_MS)
  const client = await pipeliningClient(t, server.port, HEALTH_REQUEST.repeat(MAX_REQUESTS))
  const read = await readUntilClosedByServer(client)
  const endedAt = performance.now()
  t.same(read.statuses, capAnswers)
  t.ok(read.endedCleanly)
  const serverSocket = server.serverSocketOf(client)
  if (serverSocket === undefined) throw new Error('the server never saw the connection')
  await eventually(() => serverSocket.destroyed, { what: 'the server to close the lingering socket' })
  // The linger starts as the FIN is queued, a moment before the client sees it: half the time is a safe floor.
  t.ok(performance.now() - endedAt >= SHORT_LINGER_MS / 2, 'after lingering, not at once')
})
