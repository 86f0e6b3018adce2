import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import { createConnectionBackpressure, type ConnectionBackpressure } from '../../src/http/connection-backpressure.js'
import { StatusLines } from '../server/raw-http.js'
import { eventually } from '../support/eventually.js'

// The configuration's least bound; a few answers pass it.
const BOUND_BYTES = 64 * 1024
const ANSWER_BYTES = 20_000
// More than one read of Node's (64 KiB), so that a server that went on reading would read them, and
// answers (60 MB) far beyond what the kernel's buffers take for a client that does not read.
const PIPELINED = 3_000
const REQUEST = 'GET /answer HTTP/1.1\r\nHost: x\r\n\r\n'

interface ServerUnderTest {
  port: number
  backpressure: ConnectionBackpressure
  /** The server's end of each connection. */
  sockets: Socket[]
  /** The connection's unsent bytes just after each answer was made. */
  unsentAfterAnswers: number[]
  answersMade: () => number
}

/**
 * A bare Node HTTP server that puts every request through the backpressure before answering, as the
 * connection-state plugin does, and answers `answer(index).bytes` bytes (once `ready` settles, when given).
 */
async function startServer (t: Test, answer: (index: number) => { bytes: number, ready?: Promise<void> | undefined }): Promise<ServerUnderTest> {
  const backpressure = createConnectionBackpressure(BOUND_BYTES)
  const sockets: Socket[] = []
  const unsentAfterAnswers: number[] = []
  let index = 0
  const respond = async (request: IncomingMessage, response: ServerResponse) => {
    const { bytes, ready } = answer(index++)
    await ready
    response.writeHead(200, { 'content-length': bytes }).end(Buffer.alloc(bytes, 'a'))
    unsentAfterAnswers.push(backpressure.unsentBytes(request.socket))
  }
  const server = createServer((request, response) => {
    const proceed = () => { respond(request, response).catch(() => response.destroy()) }
    if (backpressure.mustWait(response)) backpressure.wait(request, response, proceed)
    else proceed()
  })
  server.on('connection', (socket: Socket) => sockets.push(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as AddressInfo).port, backpressure, sockets, unsentAfterAnswers, answersMade: () => unsentAfterAnswers.length }
}

/** A client that writes `requests` pipelined requests and reads nothing until told to. */
async function pipeliningClient (t: Test, port: number, requests: number) {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.pause()
  socket.write(REQUEST.repeat(requests))
  return {
    socket,
    sentBytes: REQUEST.length * requests,
    /** Reads every answer from now on; resolves with the statuses once `count` answers came. */
    readAnswers: async (count: number): Promise<number[]> => {
      const lines = new StatusLines()
      socket.setEncoding('latin1')
      socket.on('data', (chunk: string) => { lines.push(chunk) })
      socket.resume()
      return await eventually(() => lines.statuses.length >= count && lines.statuses, { what: `${count} answers` })
    },
  }
}

t.test('a client that never reads: its connection stops being read, and its unsent answers stay within the bound plus one', async (t) => {
  const server = await startServer(t, () => ({ bytes: ANSWER_BYTES }))
  const client = await pipeliningClient(t, server.port, PIPELINED)
  const socket = await eventually(() => server.sockets[0], { what: 'the connection' })

  await eventually(() => socket.isPaused() && server.backpressure.waitingRequests(socket) > 0 &&
    server.backpressure.unsentBytes(socket) > BOUND_BYTES, { what: 'the connection to be held past its bound' })
  const made = server.answersMade()
  t.ok(socket.isPaused(), 'the connection is not read from')
  t.ok(socket.bytesRead < client.sentBytes, `the server read ${socket.bytesRead} of the ${client.sentBytes} bytes sent`)
  t.ok(made < PIPELINED, `${made} of ${PIPELINED} answers made`)
  const most = Math.max(...server.unsentAfterAnswers)
  t.ok(most <= BOUND_BYTES + ANSWER_BYTES, `the unsent bytes never exceeded the bound plus one answer (at most ${most})`)

  const statuses = await client.readAnswers(PIPELINED)
  t.equal(statuses.length, PIPELINED, 'once the client reads, every request is answered')
  t.ok(statuses.every((status) => status === 200))
  t.ok(Math.max(...server.unsentAfterAnswers) <= BOUND_BYTES + ANSWER_BYTES, 'and the bound held throughout')
})

t.test('answers larger than the bound: one at a time beyond it, whatever their size', async (t) => {
  const large = 3 * BOUND_BYTES
  // Their weight (40 MiB) is far more than the kernel's buffers take for a client that does not read.
  const requests = 400
  const server = await startServer(t, (index) => ({ bytes: index % 2 === 0 ? large : 100 }))
  const client = await pipeliningClient(t, server.port, requests)
  const socket = await eventually(() => server.sockets[0], { what: 'the connection' })
  await eventually(() => server.backpressure.unsentBytes(socket) > BOUND_BYTES && server.backpressure.waitingRequests(socket) > 0,
    { what: 'the connection to be held past its bound' })
  await sleep(50)
  t.ok(Math.max(...server.unsentAfterAnswers) <= BOUND_BYTES + large, 'at most one large answer past the bound')
  t.equal((await client.readAnswers(requests)).length, requests, 'every answer comes once the client reads')
})

t.test('a pipelined request waits for the answer before it to be made, however long that takes', async (t) => {
  let answerTheSecond = () => {}
  const second = new Promise<void>((resolve) => { answerTheSecond = resolve })
  const server = await startServer(t, (index) => ({ bytes: 10, ready: index === 1 ? second : undefined }))
  const client = await pipeliningClient(t, server.port, 4)
  const socket = await eventually(() => server.sockets[0], { what: 'the connection' })
  // Nothing is unsent, yet the third and fourth wait until the second is made.
  await eventually(() => server.answersMade() === 1 && server.backpressure.waitingRequests(socket) === 2,
    { what: 'one answer made, two requests waiting behind the second' })
  await sleep(50)
  t.equal(server.backpressure.waitingRequests(socket), 2, 'they go on waiting while the second is not made')
  answerTheSecond()
  t.same(await client.readAnswers(4), [200, 200, 200, 200], 'then all four are answered, in order')
})

t.test('the requests still waiting when the client goes away are never run', async (t) => {
  const server = await startServer(t, () => ({ bytes: ANSWER_BYTES }))
  const client = await pipeliningClient(t, server.port, PIPELINED)
  const socket = await eventually(() => server.sockets[0], { what: 'the connection' })
  await eventually(() => server.backpressure.waitingRequests(socket) > 0 && server.backpressure.unsentBytes(socket) > BOUND_BYTES,
    { what: 'requests waiting' })
  const made = server.answersMade()
  client.socket.destroy()
  await eventually(() => socket.destroyed, { what: 'the server to see the connection close' })
  t.equal(server.backpressure.waitingRequests(socket), 0, 'nothing waits any more')
  await sleep(50)
  t.equal(server.answersMade(), made, 'and none of them was answered')
})

t.test('a client that waits for each answer never waits here', async (t) => {
  const server = await startServer(t, () => ({ bytes: ANSWER_BYTES }))
  const socket = connect(server.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  for (let request = 1; request <= 5; request++) {
    socket.write(REQUEST)
    await eventually(() => received.length >= request * ANSWER_BYTES, { what: `answer ${request}` })
  }
  const serverSocket = await eventually(() => server.sockets[0], { what: 'the connection' })
  t.equal(server.backpressure.waitingRequests(serverSocket), 0)
  t.notOk(serverSocket.isPaused(), 'the connection is read as usual')
})
