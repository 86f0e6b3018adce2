import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { Client, request } from 'undici'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { FLOODED_SERVER_ENV, floodWithUnreadPipelinedRequests } from './pipelining-flood.js'
import { readUntilClosedByServer } from './raw-http.js'
import { startServerProcess } from './server-process.js'

// The bound this test holds the server to: one client flooding pipelined requests it never reads.
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024
const MIB = 2 ** 20
// Node 24 lets V8's young generation grow to 128 MiB under a fast client's allocation alone (Node 20: 32
// MiB), which read as up to +96 MiB of RSS during the flood on a fast machine. Semi-spaces of Node 20's
// size keep that growth the other client's and small, so the bound measures what the flood adds.
const YOUNG_GENERATION_AS_NODE_20 = { NODE_OPTIONS: '--max-semi-space-size=16' }

t.test('a client pipelining requests it never reads neither grows memory without bound nor keeps another client from being served', async (t) => {
  const simulator = await startSimulator(t)
  const { child, origin } = await startServerProcess(t, simulator, { ...FLOODED_SERVER_ENV, ...YOUNG_GENERATION_AS_NODE_20 })
  if (child.pid === undefined) throw new Error('the server has no pid')

  const flood = await floodWithUnreadPipelinedRequests({ origin, pid: child.pid })
  const growth = flood.peakBytes - flood.baselineBytes
  // How fast the other client was served is a figure of this machine's load: test/bench/edge-figures.ts prints it.
  t.comment(`RSS ${(flood.baselineBytes / MIB).toFixed(1)} MiB before, peak ${(flood.peakBytes / MIB).toFixed(1)} MiB: ` +
    `+${(growth / MIB).toFixed(1)} MiB for ${flood.floodRequests} pipelined requests; the other client: ${flood.statuses.length} answers; ` +
    `the flooding connection closed by the server after ${flood.closedAfterMs.toFixed(0)} ms`)
  t.ok(growth < RSS_GROWTH_BOUND_BYTES, `the server's RSS grew less than ${RSS_GROWTH_BOUND_BYTES / MIB} MiB`)
  t.ok(flood.statuses.length > 0, 'the other client was served during the flood')
  t.ok(flood.statuses.every((status) => status === 200), 'and got every answer')
  t.pass('the server closed the flooding connection (request cap or connection timeout)')

  const after = await request(`${origin}/healthz`)
  t.equal(after.statusCode, 200, 'and goes on serving')
  await after.body.dump()
})

const CONTRACT_REQUEST = 'GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
const FLOODING_CLIENTS = 8
const CONTRACT_REQUESTS_PER_CLIENT = 4_000
const MAX_UNSENT_BYTES = 1_048_576
// The default cap: its answers weigh far more than the kernel's buffers can take for a client that does not read.
const CONTRACT_REQUESTS_PER_SOCKET = 1_000
// Room for an answer's header fields beside the document.
const ANSWER_HEAD_BYTES = 1_024

/** The bytes the server holds for a connection: in the socket's buffer, and in the answers queued behind it. */
function heldBytes (socket: Socket, responses: ServerResponse[]): number {
  return responses.reduce((bytes, response) => bytes + (response.socket === null ? response.writableLength : 0), socket.writableLength)
}

t.test('clients pipelining large answers they never read: each connection stops being read past its byte bound, others are served', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, {
    RATE_LIMIT_MAX: '1000000',
    HTTP_MAX_UNSENT_BYTES_PER_CONNECTION: String(MAX_UNSENT_BYTES),
    HTTP_MAX_REQUESTS_PER_SOCKET: String(CONTRACT_REQUESTS_PER_SOCKET),
  }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const serverSockets = new Map<number, Socket>()
  const answers = new Map<Socket, ServerResponse[]>()
  app.server.on('connection', (socket: Socket) => { serverSockets.set(socket.remotePort ?? 0, socket) })
  app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    answers.set(request.socket, [...answers.get(request.socket) ?? [], response])
  })
  const answerBytes = app.openApiDocumentJson().length + ANSWER_HEAD_BYTES

  const pipelined = CONTRACT_REQUEST.repeat(CONTRACT_REQUESTS_PER_CLIENT)
  const floods = await Promise.all(Array.from({ length: FLOODING_CLIENTS }, async () => {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.pause()
    socket.write(pipelined)
    return socket
  }))
  t.teardown(() => { for (const socket of floods) socket.destroy() })
  const held = await eventually(() => {
    const sockets = floods.map((flood) => serverSockets.get(flood.localPort ?? 0))
    if (sockets.some((socket) => socket === undefined)) return false
    const all = sockets as Socket[]
    return all.every((socket) => socket.isPaused() && heldBytes(socket, answers.get(socket) ?? []) > MAX_UNSENT_BYTES) && all
  }, { what: 'every flooding connection to be held past its bound' })
  for (const socket of held) {
    t.ok(socket.bytesRead < pipelined.length, `a flooding connection was read ${socket.bytesRead} of ${pipelined.length} bytes, then not any more`)
    t.ok(heldBytes(socket, answers.get(socket) ?? []) <= MAX_UNSENT_BYTES + answerBytes, 'its unsent answers are within the bound plus one')
  }

  const normal = new Client(`http://127.0.0.1:${port}`)
  t.teardown(() => normal.destroy())
  for (const path of [phonesUrl('demo-shop'), '/openapi.json', '/healthz']) {
    const response = await normal.request({ method: 'GET', path })
    await response.body.dump()
    t.equal(response.statusCode, 200, `another client is served as usual: ${path}`)
  }

  const read = await readUntilClosedByServer(floods[0]!)
  t.same(read.statuses, Array.from({ length: CONTRACT_REQUESTS_PER_SOCKET }, () => 200),
    'once a flooding client reads, it gets every answer up to the per-connection cap')
  t.ok(read.endedCleanly, 'then the connection ends, without a reset')
})
