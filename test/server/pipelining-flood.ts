import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client } from 'undici'
import { phonesUrl } from '../helper.js'
import { eventually } from '../support/eventually.js'

// One client writes this many pipelined requests and never reads an answer, while another client is
// served on a connection of its own. test/server/pipelining.test.ts holds the server to what must not
// happen; test/bench/edge-figures.ts prints how fast the other client was served meanwhile.

const FLOOD_REQUESTS = 20_000
const PIPELINED_PROBE = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
const NORMAL_CLIENT_MS = 3_000
const MAX_REQUESTS_PER_SOCKET = 1_000
// Short, so that a connection the request cap did not close is closed soon after; above NXCLOUD_TIMEOUT_MS.
const NXCLOUD_TIMEOUT_MS = 1_000
const CONNECTION_TIMEOUT_MS = 2_000
const SAMPLE_INTERVAL_MS = 20
const TCP_ESTABLISHED = '01'

/** What the server under the flood runs with (for startServerProcess). */
export const FLOODED_SERVER_ENV = {
  NXCLOUD_TIMEOUT_MS: String(NXCLOUD_TIMEOUT_MS),
  RATE_LIMIT_MAX: '1000000',
  HTTP_MAX_REQUESTS_PER_SOCKET: String(MAX_REQUESTS_PER_SOCKET),
  HTTP_CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
}

export interface FloodedServer {
  origin: string
  pid: number
}

export interface FloodOutcome {
  floodRequests: number
  /** The server's RSS after the other client's warm-up, and the most it reached during the flood. */
  baselineBytes: number
  peakBytes: number
  /** Every request of the other client while the flood was on: its status and how long its answer took. */
  statuses: number[]
  latenciesMs: number[]
  /** From the flood's write until the server no longer held the flooding connection established. */
  closedAfterMs: number
}

/** Floods `server` with pipelined requests it is never asked to answer, and serves another client meanwhile. */
export async function floodWithUnreadPipelinedRequests (server: FloodedServer): Promise<FloodOutcome> {
  const port = Number(new URL(server.origin).port)
  const path = phonesUrl('demo-shop')
  const normal = new Client(server.origin)
  let flood: Socket | undefined
  try {
    // The other client's own load, for as long as it runs during the flood, before the baseline is read:
    // V8 grows its young generation with the allocation rate, the other client's doing, not the flood's.
    await timedGets(normal, path, NORMAL_CLIENT_MS)
    const baselineBytes = await residentBytes(server.pid)
    const socket = flood = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    await once(socket, 'connect')
    socket.pause()
    socket.write(PIPELINED_PROBE.repeat(FLOOD_REQUESTS))
    const floodStarted = performance.now()

    let flooding = true
    const peak = sampleWhile(server.pid, () => flooding)
    const floodPort = socket.localPort ?? 0
    const closed = eventually(async () => !await serverSideEstablished(port, floodPort),
      { what: 'the server to close the flooding connection (request cap or connection timeout)' })
      .then(() => performance.now() - floodStarted)
    // Awaited below; until then a failure of the other client must not leave it unhandled.
    closed.catch(() => {})
    const { latenciesMs, statuses } = await timedGets(normal, path, NORMAL_CLIENT_MS)
    const closedAfterMs = await closed.finally(() => { flooding = false })
    return { floodRequests: FLOOD_REQUESTS, baselineBytes, peakBytes: await peak, statuses, latenciesMs, closedAfterMs }
  } finally {
    flood?.destroy()
    await normal.destroy()
  }
}

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

async function timedGets (client: Client, path: string, durationMs: number): Promise<{ latenciesMs: number[], statuses: number[] }> {
  const latenciesMs: number[] = []
  const statuses: number[] = []
  const end = performance.now() + durationMs
  while (performance.now() < end) {
    const started = performance.now()
    const response = await client.request({ method: 'GET', path })
    await response.body.dump()
    latenciesMs.push(performance.now() - started)
    statuses.push(response.statusCode)
  }
  return { latenciesMs, statuses }
}
