/**
 * Open-loop load over real sockets: requests sent at a steady rate whatever the answers take (a
 * closed loop would slow down with the server and hide a stall), spread over several servers, each
 * answer recorded with when it was sent, its status, its X-Cache and how long it took.
 */
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'

const TICK_MS = 10
const CONNECTIONS_PER_ORIGIN = 32

export interface LoadRequest {
  method?: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  /** What the answer is about, for the report (e.g. 'hit', 'unknown-tenant'). */
  kind: string
}

export interface LoadSample {
  /** When it was sent, in ms since the load started. */
  sentAtMs: number
  latencyMs: number
  /** 0: no answer (the connection failed). */
  status: number
  cache: string | undefined
  origin: string
  path: string
  kind: string
}

export interface SteadyLoad {
  readonly samples: LoadSample[]
  /** Ms since the load started: marks the phases of a run. */
  now (): number
  /** Stops sending and waits for the answers still due. */
  stop (): Promise<void>
}

export interface SteadyLoadOptions {
  /** The servers, asked in turn. */
  origins: () => string[]
  /** The request to send next (called once per request). */
  next: (index: number) => LoadRequest
  ratePerSecond: number
}

export function startSteadyLoad (options: SteadyLoadOptions): SteadyLoad {
  const agent = new Agent({ connections: CONNECTIONS_PER_ORIGIN, pipelining: 1 })
  const samples: LoadSample[] = []
  const inFlight = new Set<Promise<void>>()
  const startedAt = performance.now()
  const now = (): number => performance.now() - startedAt
  let sent = 0
  let stopped: Promise<void> | undefined

  function send (): void {
    const origins = options.origins()
    const origin = origins[sent % origins.length] ?? ''
    const { method = 'GET', path, headers = {}, kind } = options.next(sent)
    sent++
    const sentAtMs = now()
    const done = request(origin + path, { method, headers, dispatcher: agent }).then(async (response) => {
      await response.body.dump()
      const cache = response.headers['x-cache']
      samples.push({ sentAtMs, latencyMs: now() - sentAtMs, status: response.statusCode, cache: typeof cache === 'string' ? cache : undefined, origin, path, kind })
    }, () => {
      samples.push({ sentAtMs, latencyMs: now() - sentAtMs, status: 0, cache: undefined, origin, path, kind })
    }).finally(() => { inFlight.delete(done) })
    inFlight.add(done)
  }

  // Catches up on the requests due since the start, so a late timer does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor(now() * options.ratePerSecond / 1000)
    while (sent < due) send()
  }, TICK_MS)

  return {
    samples,
    now,
    stop () {
      clearInterval(timer)
      stopped ??= Promise.all([...inFlight]).then(() => agent.close())
      return stopped
    },
  }
}

/** Answers counted by status, and latency percentiles, of the samples sent in [fromMs, toMs). */
export interface LoadSummary {
  requests: number
  byStatus: Record<string, number>
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export function summarise (samples: LoadSample[], fromMs = 0, toMs = Number.POSITIVE_INFINITY): LoadSummary {
  const within = samples.filter((sample) => sample.sentAtMs >= fromMs && sample.sentAtMs < toMs)
  const latencies = within.map((sample) => sample.latencyMs).sort((a, b) => a - b)
  const byStatus: Record<string, number> = {}
  for (const { status } of within) byStatus[status] = (byStatus[status] ?? 0) + 1
  return {
    requests: within.length,
    byStatus,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? 0,
  }
}

function percentile (sorted: number[], share: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)] ?? 0
}

export function formatSummary (label: string, summary: LoadSummary): string {
  const statuses = Object.entries(summary.byStatus).map(([status, count]) => `${status}: ${count}`).join(', ')
  return `${label}: ${summary.requests} requests (${statuses}); p50 ${summary.p50Ms.toFixed(1)} ms, p99 ${summary.p99Ms.toFixed(1)} ms, max ${summary.maxMs.toFixed(1)} ms`
}
