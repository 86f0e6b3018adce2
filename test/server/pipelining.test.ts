import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Client } from 'undici'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { StatusLines } from './raw-http.js'
import { startServerProcess } from './server-process.js'

const FLOOD_REQUESTS = 20_000
const PIPELINED_PROBE = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
// The bound this test holds the server to: one client flooding pipelined requests it never reads.
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024
// A normal client on another connection, meanwhile: every answer within this, whatever the machine's noise.
const NORMAL_ANSWER_BOUND_MS = 500
const NORMAL_CLIENT_MS = 3_000
const WARM_UP_REQUESTS = 500
const MAX_REQUESTS_PER_SOCKET = 1_000
// Short, so that the test also ends quickly if the cap did not close the connection; above NXCLOUD_TIMEOUT_MS.
const NXCLOUD_TIMEOUT_MS = 1_000
const CONNECTION_TIMEOUT_MS = 2_000
const CLOSE_SLACK_MS = 2_000
const SAMPLE_INTERVAL_MS = 20
const TCP_ESTABLISHED = '01'

async function residentBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kibibytes = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
  if (kibibytes === undefined) throw new Error(`no VmRSS for ${pid}`)
  return Number(kibibytes) * 1024
}

// The server's end of one TCP connection, as the kernel lists it: established, or not (closing, gone).
async function serverSideEstablished (serverPort: number, clientPort: number): Promise<boolean> {
  const hexPort = (port: number) => port.toString(16).toUpperCase().padStart(4, '0')
  const table = await readFile('/proc/net/tcp', 'utf8')
  return table.split('\n').some((line) => {
    const [, local, remote, state] = line.trim().split(/\s+/)
    return local?.endsWith(`:${hexPort(serverPort)}`) === true && remote?.endsWith(`:${hexPort(clientPort)}`) === true &&
      state === TCP_ESTABLISHED
  })
}

async function sampleWhile (pid: number, running: () => boolean): Promise<number> {
  let peak = 0
  while (running()) {
    peak = Math.max(peak, await residentBytes(pid).catch(() => 0))
    await sleep(SAMPLE_INTERVAL_MS)
  }
  return peak
}

async function timedGets (client: Client, path: string, durationMs: number): Promise<{ latencies: number[], statuses: number[] }> {
  const latencies: number[] = []
  const statuses: number[] = []
  const end = Date.now() + durationMs
  while (Date.now() < end) {
    const started = performance.now()
    const response = await client.request({ method: 'GET', path })
    await response.body.dump()
    latencies.push(performance.now() - started)
    statuses.push(response.statusCode)
  }
  return { latencies, statuses }
}

t.test('a client pipelining requests it never reads neither grows memory without bound nor delays another client', async (t) => {
  const simulator = await startSimulator(t)
  const { child, origin } = await startServerProcess(t, simulator, {
    NXCLOUD_TIMEOUT_MS: String(NXCLOUD_TIMEOUT_MS),
    RATE_LIMIT_MAX: '1000000',
    HTTP_MAX_REQUESTS_PER_SOCKET: String(MAX_REQUESTS_PER_SOCKET),
    HTTP_CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
  })
  if (child.pid === undefined) throw new Error('the server has no pid')
  const server = { pid: child.pid, port: Number(new URL(origin).port) }
  const normal = new Client(origin)
  t.teardown(() => normal.destroy())
  const path = phonesUrl('demo-shop')
  for (let request = 0; request < WARM_UP_REQUESTS; request++) {
    await (await normal.request({ method: 'GET', path })).body.dump()
  }
  const baseline = await residentBytes(server.pid)

  const flood = connect(server.port, '127.0.0.1')
  t.teardown(() => flood.destroy())
  flood.on('error', () => {})
  await new Promise((resolve) => flood.once('connect', resolve))
  flood.pause()
  flood.write(PIPELINED_PROBE.repeat(FLOOD_REQUESTS))
  const floodStarted = Date.now()

  let flooding = true
  const peakPromise = sampleWhile(server.pid, () => flooding)
  const closedPromise = (async () => {
    const closeDeadline = floodStarted + CONNECTION_TIMEOUT_MS + CLOSE_SLACK_MS
    while (await serverSideEstablished(server.port, flood.localPort ?? 0) && Date.now() < closeDeadline) await sleep(SAMPLE_INTERVAL_MS)
    return Date.now() - floodStarted
  })()
  const { latencies, statuses } = await timedGets(normal, path, NORMAL_CLIENT_MS)
  const closedAfterMs = await closedPromise
  flooding = false
  const peak = await peakPromise

  const growth = peak - baseline
  const slowest = Math.max(...latencies)
  const sorted = [...latencies].sort((a, b) => a - b)
  t.comment(`RSS ${(baseline / 2 ** 20).toFixed(1)} MiB before, peak ${(peak / 2 ** 20).toFixed(1)} MiB: +${(growth / 2 ** 20).toFixed(1)} MiB ` +
    `for ${FLOOD_REQUESTS} pipelined requests; the other client: ${latencies.length} answers, ` +
    `median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms; ` +
    `the flooding connection closed by the server after ${closedAfterMs} ms`)
  t.ok(growth < RSS_GROWTH_BOUND_BYTES, `the server's RSS grew less than ${RSS_GROWTH_BOUND_BYTES / 2 ** 20} MiB`)
  t.ok(statuses.every((status) => status === 200), 'the other client got every answer')
  t.ok(slowest < NORMAL_ANSWER_BOUND_MS, `each within ${NORMAL_ANSWER_BOUND_MS} ms`)
  t.notOk(await serverSideEstablished(server.port, flood.localPort ?? 0),
    'the server closed the flooding connection (request cap or connection timeout)')

  const after = await normal.request({ method: 'GET', path: '/healthz' })
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

  const statuses = await readToTheEnd(floods[0]!)
  t.same(statuses, Array.from({ length: CONTRACT_REQUESTS_PER_SOCKET }, () => 200),
    'once a flooding client reads, it gets every answer up to the per-connection cap, then the connection ends')
})

/** The statuses of every answer on a connection until the server ends it, the bodies read and dropped. */
async function readToTheEnd (socket: Socket): Promise<number[]> {
  const lines = new StatusLines()
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { lines.push(chunk) })
  socket.resume()
  await new Promise((resolve) => socket.once('end', resolve))
  return lines.statuses
}
