import type { UpstreamLatency } from './upstream-latency.js'

// How often the waiting calls are looked over: each is told soon after it can no longer be answered in time.
const SWEEP_INTERVAL_MS = 25

export interface TimedBulkheadOptions {
  /** Calls running at once. */
  concurrency: number
  /** Calls waiting at most: a memory guard only, since a call waits only while it can still be answered in time. */
  maxWaiting: number
  /** NxCloud's recent latency, which the wait is judged by. */
  latency: UpstreamLatency
}

/** A call refused a slot: it could not have been answered within its budget, or too many are waiting. */
export class ShedError extends Error {
  /** How long the calls ahead of it were expected to take: when trying again is worth it. */
  readonly expectedWaitMs: number

  constructor (expectedWaitMs: number) {
    super('the call could not have been answered within its budget')
    this.name = 'ShedError'
    this.expectedWaitMs = expectedWaitMs
  }
}

export interface TimedBulkhead {
  /**
   * Runs `fn` in a free slot, or once one frees if it can then still be answered within `budgetMs`;
   * else rejects with a ShedError: at once if that is known on arrival, or as soon as it is known.
   */
  run<T> (fn: () => Promise<T>, budgetMs: number): Promise<T>
  readonly running: number
  readonly waiting: number
}

interface Waiter {
  deadline: number
  start (): void
  shed (error: ShedError): void
}

interface Estimate {
  /** How long after a slot was taken it usually frees. */
  typicalMs: number
  /** How long a call must have left to be answered. */
  slowMs: number
}

/**
 * A bulkhead whose queue is bounded by time rather than by a count: a call waits for a slot only while
 * the calls ahead of it and its own, at NxCloud's recent latency, still fit in its budget. Not
 * cockatiel's bulkhead: its queue cannot let a call go (a waiter whose signal aborts stays queued until
 * its turn, and that turn then leaves the freed slot idle until another call ends), nor say where a call
 * stands in it.
 */
export function createTimedBulkhead (options: TimedBulkheadOptions): TimedBulkhead {
  const { concurrency, maxWaiting, latency } = options
  // When each running call took its slot, oldest first (performance.now() never goes back).
  const startedAt: number[] = []
  let waiters: Waiter[] = []
  let sweeper: NodeJS.Timeout | undefined

  // Before NxCloud has answered once, the only evidence is the oldest running call: a call takes at
  // least as long as it has run so far; no slot is assumed to free before it does.
  function estimate (now: number): Estimate {
    const typicalMs = latency.typicalMs()
    const slowMs = latency.slowMs()
    if (typicalMs !== undefined && slowMs !== undefined) return { typicalMs, slowMs }
    return { typicalMs: 0, slowMs: now - (startedAt[0] ?? now) }
  }

  // Each running call frees its slot a typical duration after it took it; then the slots serve the line in turn.
  function expectedStart (position: number, now: number, typicalMs: number): number {
    const slot = position % concurrency
    const idle = concurrency - startedAt.length
    const freeAt = slot < idle ? now : Math.max(now, (startedAt[slot - idle] ?? now) + typicalMs)
    return freeAt + Math.floor(position / concurrency) * typicalMs
  }

  async function runNow<T> (fn: () => Promise<T>): Promise<T> {
    const started = performance.now()
    startedAt.push(started)
    try {
      return await fn()
    } finally {
      startedAt.splice(startedAt.indexOf(started), 1)
      admitWaiting()
    }
  }

  // A freed slot goes to the first waiter that still has time for a call; those that have not are shed.
  function admitWaiting (): void {
    while (startedAt.length < concurrency && waiters.length > 0) {
      const waiter = waiters.shift() as Waiter
      const now = performance.now()
      if (now + estimate(now).slowMs > waiter.deadline) waiter.shed(new ShedError(0))
      else waiter.start()
    }
    if (waiters.length === 0) stopSweeping()
  }

  // The estimate moves as NxCloud answers, and every waiter's budget runs down: shed who can no longer make it.
  function sweep (): void {
    const now = performance.now()
    const { typicalMs, slowMs } = estimate(now)
    let position = 0
    waiters = waiters.filter((waiter) => {
      const start = expectedStart(position, now, typicalMs)
      if (start + slowMs <= waiter.deadline) {
        position++
        return true
      }
      waiter.shed(new ShedError(start - now))
      return false
    })
    if (waiters.length === 0) stopSweeping()
  }

  function stopSweeping (): void {
    clearInterval(sweeper)
    sweeper = undefined
  }

  return {
    get running () { return startedAt.length },
    get waiting () { return waiters.length },
    run (fn, budgetMs) {
      // A slot is never idle while someone waits: the call that frees it hands it on before returning.
      if (startedAt.length < concurrency) return runNow(fn)
      const now = performance.now()
      const deadline = now + budgetMs
      const { typicalMs, slowMs } = estimate(now)
      const start = expectedStart(waiters.length, now, typicalMs)
      if (waiters.length >= maxWaiting || start + slowMs > deadline) return Promise.reject(new ShedError(start - now))
      return new Promise((resolve, reject) => {
        waiters.push({ deadline, start: () => { runNow(fn).then(resolve, reject) }, shed: reject })
        sweeper ??= setInterval(sweep, SWEEP_INTERVAL_MS)
      })
    },
  }
}
