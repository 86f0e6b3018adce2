/**
 * The three ways the benchmark loads a server:
 * - `saturate`: autocannon's closed loop, as fast as the server answers (requests/s, and the requests to
 *   divide its CPU time by);
 * - `offerFixedRate`: an open loop at a fixed rate, latency measured per request in microseconds, each
 *   request made by the caller (the miss row: a tenant per request, at a few hundred a second). Not
 *   autocannon's `overallRate`: that sends each second's quota back to back at the start of the second, so
 *   its "fixed rate" is a burst at saturation followed by silence, and it records whole milliseconds. The
 *   hit rows' fixed rate, tens of thousands a second, is open-loop.c's: this loop's own pauses at that rate
 *   would be in the latencies it times;
 * - `sendAll`: a given number of requests, a few at a time (filling a cache).
 */
import autocannon from 'autocannon'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'

export interface LoadRequest {
  path: string
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
}

export interface SaturationResult {
  requests: number
  requestsPerSecond: number
  non2xx: number
  errors: number
}

export interface LatencyResult {
  /** Answers with a 2xx status; the latencies are theirs. */
  answered: number
  non2xx: number
  errors: number
  /** Requests sent per second, as achieved (the generator shares a busy machine). */
  offeredPerSecond: number
  p50Ms: number
  p99Ms: number
  /**
   * How late the open loop sent its requests (p99, after their due time): large when the bench process
   * itself was starved of CPU, and then the latencies are partly its own. 0 for a closed loop.
   */
  dispatchLagP99Ms: number
}

export async function saturate (url: string, headers: Record<string, string>, connections: number, seconds: number): Promise<SaturationResult> {
  const result = await autocannon({ url, headers, connections, pipelining: 1, duration: seconds })
  return {
    requests: result.requests.total,
    requestsPerSecond: result.requests.total / Math.max(result.duration, Number.EPSILON),
    non2xx: result.non2xx,
    errors: result.errors,
  }
}

export interface FixedRateLoad {
  ratePerSecond: number
  seconds: number
  /** Sockets available to the generator: enough that the server, not the pool, is what requests wait for. */
  connections: number
  requestFor: (index: number) => LoadRequest
}

/**
 * Sends request i at `start + i / rate` whatever the earlier ones are doing (an open loop, as real clients
 * arrive), each timed from its dispatch to the last byte of its answer.
 */
export async function offerFixedRate (origin: string, load: FixedRateLoad): Promise<LatencyResult> {
  const total = Math.max(1, Math.round(load.ratePerSecond * load.seconds))
  const intervalMs = 1000 / load.ratePerSecond
  const recorder = new LatencyRecorder(total)
  const lagsMs = new Float64Array(total)
  const pool = new Pool(origin, { connections: load.connections, pipelining: 1 })
  const inFlight: Array<Promise<void>> = []
  const startedAt = performance.now()
  try {
    while (inFlight.length < total) {
      const now = performance.now()
      const due = Math.min(total, Math.floor((now - startedAt) / intervalMs) + 1)
      while (inFlight.length < due) {
        lagsMs[inFlight.length] = now - (startedAt + inFlight.length * intervalMs)
        inFlight.push(timedRequest(pool, load.requestFor(inFlight.length), recorder))
      }
      // Sending the due requests can take past the next one's time: Node 24 warns of a negative delay.
      if (inFlight.length < total) await sleep(Math.max(0, startedAt + inFlight.length * intervalMs - performance.now()))
    }
    const sendingSeconds = Math.max(performance.now() - startedAt, intervalMs) / 1000
    await Promise.all(inFlight)
    return { ...recorder.result(total / sendingSeconds), dispatchLagP99Ms: percentile(lagsMs.sort(), 0.99) }
  } finally {
    await pool.close()
  }
}

/** Sends `count` requests, `concurrency` at a time; for filling, not for timing. */
export async function sendAll (origin: string, count: number, concurrency: number, requestFor: (index: number) => LoadRequest): Promise<LatencyResult> {
  const recorder = new LatencyRecorder(count)
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 })
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) await timedRequest(pool, requestFor(next++), recorder)
  }
  const startedAt = performance.now()
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
    return recorder.result(count / ((performance.now() - startedAt) / 1000))
  } finally {
    await pool.close()
  }
}

async function timedRequest (pool: Pool, request: LoadRequest, recorder: LatencyRecorder): Promise<void> {
  const sentAt = performance.now()
  try {
    const response = await pool.request({ method: 'GET', ...request })
    await response.body.dump()
    recorder.record(response.statusCode, performance.now() - sentAt)
  } catch {
    recorder.fail()
  }
}

class LatencyRecorder {
  private readonly latenciesMs: Float64Array
  private answered = 0
  private non2xx = 0
  private errors = 0

  constructor (capacity: number) {
    this.latenciesMs = new Float64Array(capacity)
  }

  record (status: number, latencyMs: number): void {
    if (status < 200 || status > 299) this.non2xx++
    else this.latenciesMs[this.answered++] = latencyMs
  }

  fail (): void {
    this.errors++
  }

  result (offeredPerSecond: number): LatencyResult {
    const sorted = this.latenciesMs.slice(0, this.answered).sort()
    return {
      answered: this.answered,
      non2xx: this.non2xx,
      errors: this.errors,
      offeredPerSecond,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      dispatchLagP99Ms: 0,
    }
  }
}

/** Nearest-rank percentile of ascending values (NaN when there are none). */
export function percentile (sorted: ArrayLike<number>, fraction: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)))
  return sorted[rank - 1]!
}

export function median (values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
