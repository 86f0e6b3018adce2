import {
  BrokenCircuitError,
  CircuitState,
  ExponentialBackoff,
  TaskCancelledError,
  circuitBreaker,
  handleWhen,
  retry,
  type CircuitBreakerPolicy,
} from 'cockatiel'
import type { FastifyBaseLogger } from 'fastify'
import { FailureRatioBreaker } from './failure-ratio-breaker.js'
import { NxCloudError } from './nxcloud-error.js'
import { createTimedBulkhead, ShedError } from './timed-bulkhead.js'
import { createUpstreamLatency, type UpstreamLatency } from './upstream-latency.js'

export interface UpstreamProtectionOptions {
  /** Calls to NxCloud in flight at once in this process. */
  maxConcurrency: number
  /** Calls waiting for a slot at most, a memory guard: a call waits only while it can still be answered within its budget. */
  maxQueue: number
  /** Attempts per call, the first included. */
  maxAttempts: number
  /** The breaker opens when more than this share of NxCloud's attempts in its window failed (0 < ratio < 1)... */
  breakerFailureRatio: number
  /** ...and the window holds at least this many attempts. */
  breakerMinCalls: number
  /** The window of recent attempts the breaker judges. */
  breakerWindowMs: number
  /** How long the breaker stays open before one probe may test NxCloud again. */
  breakerOpenMs: number
}

/** Where the breaker's changes of state are told: the application's log. */
export type BreakerLog = Pick<FastifyBaseLogger, 'info' | 'warn'>

const RETRY_INITIAL_DELAY_MS = 50
const RETRY_MAX_DELAY_MS = 400
const MS_PER_SECOND = 1000
const NO_LOG: BreakerLog = { info () {}, warn () {} }

export type BreakerState = 'closed' | 'open' | 'half-open'

/** How busy the protection is right now: calls running, calls waiting for a slot, the breaker. */
export interface UpstreamLoad {
  inFlight: number
  queued: number
  breaker: BreakerState
  /** Times the breaker opened since start (a failed probe reopening it included). */
  breakerOpenings: number
}

export interface UpstreamProtection {
  /** Runs `call` (one attempt per invocation) under the bulkhead, the retry policy and the breaker. */
  execute<T> (call: (attempt: number) => Promise<T>, budget: AbortSignal, budgetMs: number): Promise<T>
  load (): UpstreamLoad
}

/**
 * Cockatiel's policies around every NxCloud call, outermost first: a bulkhead whose queue is bounded
 * by time (a call waits for a slot only while it can still be answered within its budget; else it is
 * shed at once), retries with decorrelated jitter for transient failures, each attempt signed afresh
 * by the caller, and a circuit breaker around each attempt, judging the share of attempts that failed
 * over a window (fast 503 while open; one probe at a time when half-open). So the breaker hears only
 * of attempts that went out to NxCloud, and counts only NxCloud's own failures among them: never a
 * call shed here, one that waited too long, nor an answer about the request or the tenant.
 */
export function createUpstreamProtection (options: UpstreamProtectionOptions, log: BreakerLog = NO_LOG): UpstreamProtection {
  const latency = createUpstreamLatency()
  const slots = createTimedBulkhead({ concurrency: options.maxConcurrency, maxWaiting: options.maxQueue, latency })
  const retrying = retry(handleWhen((error) => error instanceof NxCloudError && error.transient), {
    maxAttempts: options.maxAttempts - 1,
    backoff: new ExponentialBackoff({ initialDelay: RETRY_INITIAL_DELAY_MS, maxDelay: RETRY_MAX_DELAY_MS }),
  })
  const verdicts = new FailureRatioBreaker({
    failureRatio: options.breakerFailureRatio,
    minCalls: options.breakerMinCalls,
    windowMs: options.breakerWindowMs,
  })
  const breaker = circuitBreaker(handleWhen((error) => error instanceof NxCloudError && error.nxcloudFault),
    { halfOpenAfter: options.breakerOpenMs, breaker: verdicts })
  const openings = watchBreaker(breaker, verdicts, log, options.breakerOpenMs)

  // Only attempts that go out reach the breaker and the latency: `call` answers an attempt its budget
  // no longer allows (after a retry's backoff) with a timeout at once, and NxCloud never saw it.
  const attemptOnce = <T>(call: (attempt: number) => Promise<T>, attempt: number, budget: AbortSignal): Promise<T> =>
    budget.aborted ? call(attempt) : breaker.execute(() => timed(latency, () => call(attempt)), budget)

  return {
    load: () => ({
      inFlight: slots.running,
      queued: slots.waiting,
      breaker: breakerStateOf(breaker.state),
      breakerOpenings: openings.count,
    }),
    async execute (call, budget, budgetMs) {
      try {
        // The retry policy counts its attempts from 0.
        return await slots.run(() => retrying.execute(({ attempt }) => attemptOnce(call, attempt + 1, budget), budget), budgetMs)
      } catch (error) {
        throw refusalOf(error, budgetMs, openings.retryAfterSeconds) ?? error
      }
    },
  }
}

async function timed<T> (latency: UpstreamLatency, attempt: () => Promise<T>): Promise<T> {
  const startedAt = performance.now()
  try {
    return await attempt()
  } finally {
    latency.record(performance.now() - startedAt)
  }
}

// A call refused here, in NxCloud's terms: the breaker was open, or it was shed.
function refusalOf (error: unknown, budgetMs: number, breakerRetryAfterSeconds: () => number): NxCloudError | undefined {
  if (error instanceof BrokenCircuitError) {
    return new NxCloudError('breaker-open', 'NxCloud calls are suspended after repeated failures; retry later',
      { retryAfterSeconds: breakerRetryAfterSeconds(), cause: error })
  }
  if (error instanceof ShedError) {
    return new NxCloudError('shed', 'Too many NxCloud calls are under way to answer this one in time; retry shortly',
      { retryAfterSeconds: Math.max(1, Math.ceil(error.expectedWaitMs / MS_PER_SECOND)) })
  }
  // The budget ran out while the call waited for the half-open probe's outcome.
  if (error instanceof TaskCancelledError) {
    return new NxCloudError('timeout', `NxCloud did not answer within ${budgetMs} ms`, { cause: error })
  }
  return undefined
}

interface BreakerOpenings {
  readonly count: number
  /** Seconds until the open breaker lets a probe through. */
  retryAfterSeconds (): number
}

// One log line per change of state: a warning when it opens (with what the window held), info otherwise.
function watchBreaker (breaker: CircuitBreakerPolicy, verdicts: FailureRatioBreaker, log: BreakerLog, openMs: number): BreakerOpenings {
  let count = 0
  let openedAt = 0
  breaker.onBreak(() => {
    count++
    openedAt = Date.now()
    const reason = breaker.lastFailure !== undefined && 'error' in breaker.lastFailure ? breaker.lastFailure.error.message : undefined
    const window = verdicts.openedBy
    const facts = window === undefined
      ? { state: 'open', probe: 'failed', openMs }
      : { state: 'open', failures: window.failures, calls: window.calls, failureRatio: roundRatio(window.failures / window.calls), openMs }
    log.warn({ breaker: facts, reason }, 'nxcloud circuit breaker opened: NxCloud calls suspended')
  })
  breaker.onHalfOpen(() => { log.info({ breaker: { state: 'half-open' } }, 'nxcloud circuit breaker half-open: one probe call tests NxCloud') })
  breaker.onReset(() => {
    // The closing probe says NxCloud is back: what failed before it no longer counts.
    verdicts.reset()
    log.info({ breaker: { state: 'closed' } }, 'nxcloud circuit breaker closed: NxCloud calls resume')
  })
  return {
    get count () { return count },
    retryAfterSeconds: () => Math.max(1, Math.ceil((openedAt + openMs - Date.now()) / MS_PER_SECOND)),
  }
}

function roundRatio (ratio: number): number {
  return Math.round(ratio * 100) / 100
}

// Cockatiel's isolated state (a manual hold) is never used here; it would block like an open breaker.
function breakerStateOf (state: CircuitState): BreakerState {
  if (state === CircuitState.Closed) return 'closed'
  return state === CircuitState.HalfOpen ? 'half-open' : 'open'
}
