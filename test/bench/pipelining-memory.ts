/**
 * `npm run build && npx tsx test/bench/pipelining-memory.ts`: issue 15's memory figure. Against the compiled
 * service (Redis mode, API keys on), in a process of its own: clients that never read their answers each
 * pipeline thousands of `GET /openapi.json` (answers of a few hundred KiB made from requests of 41 bytes),
 * while another client reads phone lists as usual. Prints the server's resident memory before and at its
 * peak, and what the other client got meanwhile. Figures are printed, never asserted: they depend on the machine.
 */
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { Client } from 'undici'
import { progress, startFixture, startRedisBff } from './bench-fixture.js'
import { rssBytesOf, stopServer, type BenchServer } from './bench-processes.js'
import { percentile } from './http-load.js'

export interface PipeliningMemoryOptions {
  /** Clients that pipeline requests and never read an answer. */
  clients: number
  requestsPerClient: number
  path: string
  /** How long the RSS is sampled, and the other client served, once the requests are written. */
  observeMs: number
}

export interface PipeliningMemoryFigures {
  requestBytes: number
  rssBeforeBytes: number
  rssPeakBytes: number
  /** What a client reading as usual got while the others flooded. */
  other: { answers: number, non200: number, errors: number, p50Ms: number, p99Ms: number, maxMs: number }
}

export const ISSUE_15_PIPELINING: PipeliningMemoryOptions = {
  clients: 8,
  requestsPerClient: 4_000,
  path: '/openapi.json',
  observeMs: 10_000,
}

const SAMPLE_INTERVAL_MS = 50
const WARM_UP_REQUESTS = 50
const OTHER_CLIENT_PAUSE_MS = 5

/** Runs one flood against `server` and returns its figures; the flooding sockets are closed before it returns. */
export async function measurePipeliningMemory (server: BenchServer, apiKey: Record<string, string>,
  options: PipeliningMemoryOptions): Promise<PipeliningMemoryFigures> {
  const { hostname, port } = new URL(server.origin)
  const other = new Client(server.origin)
  const phones = { method: 'GET' as const, path: '/tenants/demo-shop/phones', headers: apiKey }
  const floods: Socket[] = []
  try {
    for (let index = 0; index < WARM_UP_REQUESTS; index++) {
      await (await other.request(phones)).body.dump()
      await (await other.request({ method: 'GET', path: options.path })).body.dump()
    }
    const rssBeforeBytes = rssBytesOf(server)
    const pipelined = `GET ${options.path} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`.repeat(options.requestsPerClient)
    for (let client = 0; client < options.clients; client++) {
      const socket = connect(Number(port), hostname)
      socket.on('error', () => {})
      // Never read: what the server sends stays in its buffers and the kernel's.
      socket.pause()
      socket.write(pipelined)
      floods.push(socket)
    }
    const until = performance.now() + options.observeMs
    const [rssPeakBytes, latencies] = await Promise.all([peakRss(server, until), timedRequests(other, phones, until)])
    const sorted = [...latencies.ms].sort((a, b) => a - b)
    return {
      requestBytes: Buffer.byteLength(pipelined) * options.clients,
      rssBeforeBytes,
      rssPeakBytes,
      other: {
        answers: latencies.ms.length,
        non200: latencies.non200,
        errors: latencies.errors,
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        maxMs: sorted.at(-1) ?? Number.NaN,
      },
    }
  } finally {
    for (const socket of floods) socket.destroy()
    await other.close()
  }
}

async function peakRss (server: BenchServer, until: number): Promise<number> {
  let peak = 0
  while (performance.now() < until) {
    peak = Math.max(peak, rssBytesOf(server))
    await sleep(SAMPLE_INTERVAL_MS)
  }
  return peak
}

async function timedRequests (client: Client, request: Parameters<Client['request']>[0], until: number) {
  const ms: number[] = []
  let non200 = 0
  let errors = 0
  while (performance.now() < until) {
    const started = performance.now()
    try {
      const response = await client.request(request)
      await response.body.dump()
      if (response.statusCode === 200) ms.push(performance.now() - started)
      else non200++
    } catch {
      errors++
    }
    await sleep(OTHER_CLIENT_PAUSE_MS)
  }
  return { ms, non200, errors }
}

function mib (bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1)
}

export function describePipeliningMemory (options: PipeliningMemoryOptions, figures: PipeliningMemoryFigures): string {
  const { other } = figures
  return `${options.clients} clients that never read, each pipelining ${options.requestsPerClient} GET ${options.path} ` +
    `(${mib(figures.requestBytes)} MiB of requests): RSS ${mib(figures.rssBeforeBytes)} MiB before, peak ${mib(figures.rssPeakBytes)} MiB ` +
    `(+${mib(figures.rssPeakBytes - figures.rssBeforeBytes)} MiB) over ${options.observeMs / 1000} s; another client meanwhile: ` +
    `${other.answers} phone lists (p50 ${other.p50Ms.toFixed(1)} ms, p99 ${other.p99Ms.toFixed(1)} ms, slowest ${other.maxMs.toFixed(1)} ms), ` +
    `${other.non200} other statuses, ${other.errors} errors`
}

async function main (): Promise<void> {
  const fixture = await startFixture()
  try {
    const server = await startRedisBff(fixture)
    try {
      const figures = await measurePipeliningMemory(server, fixture.apiKey, ISSUE_15_PIPELINING)
      progress(describePipeliningMemory(ISSUE_15_PIPELINING, figures))
    } finally {
      await stopServer(server)
    }
  } finally {
    await fixture.close()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
