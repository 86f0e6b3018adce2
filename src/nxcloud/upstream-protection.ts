import {
  BrokenCircuitError,
  BulkheadRejectedError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  wrap,
  type IPolicy,
} from 'cockatiel'
import { NxCloudError } from './nxcloud-error.js'

export interface UpstreamProtectionOptions {
  /** Calls to NxCloud in flight at once in this process. */
  maxConcurrency: number
  /** Calls waiting for a slot; beyond it calls are shed at once. */
  maxQueue: number
  /** Attempts per call, the first included. */
  maxAttempts: number
  /** Consecutive failed calls that open the breaker. */
  breakerThreshold: number
  /** How long the breaker stays open before one probe may test NxCloud again. */
  breakerOpenMs: number
}

const RETRY_INITIAL_DELAY_MS = 50
const RETRY_MAX_DELAY_MS = 400
const SHED_RETRY_AFTER_SECONDS = 1

export type BreakerState = 'closed' | 'open' | 'half-open'

/** How busy the protection is right now: calls running, calls waiting for a slot, the breaker. */
export interface UpstreamLoad {
  inFlight: number
  queued: number
  breaker: BreakerState
}

export interface UpstreamProtection {
  /** Runs `call` (one attempt per invocation) under the breaker, the bulkhead and the retry policy. */
  execute<T> (call: (attempt: number) => Promise<T>, budget: AbortSignal, budgetMs: number): Promise<T>
  load (): UpstreamLoad
}

/**
 * Cockatiel's policies around every NxCloud call, outermost first: a circuit breaker on consecutive
 * failed calls (fast 503 while open; one probe at a time when half-open), a bulkhead (bounded
 * concurrency and queue; beyond them the call is shed at once), and retries with decorrelated
 * jitter for transient failures, each attempt signed afresh by the caller.
 */
export function createUpstreamProtection (options: UpstreamProtectionOptions): UpstreamProtection {
  const breaker = circuitBreaker(
    // NxCloud's answers about the request or the tenant say nothing of its health.
    handleWhen((error) => !(error instanceof NxCloudError && error.aboutTheRequest)),
    { halfOpenAfter: options.breakerOpenMs, breaker: new ConsecutiveBreaker(options.breakerThreshold) }
  )
  const limiter = bulkhead(options.maxConcurrency, options.maxQueue)
  const retrying = retry(handleWhen((error) => error instanceof NxCloudError && error.transient), {
    maxAttempts: options.maxAttempts - 1,
    backoff: new ExponentialBackoff({ initialDelay: RETRY_INITIAL_DELAY_MS, maxDelay: RETRY_MAX_DELAY_MS }),
  })
  const policy: IPolicy = wrap(breaker, limiter, retrying)
  let openedAt = 0
  breaker.onBreak(() => { openedAt = Date.now() })

  const retryAfterSeconds = () =>
    Math.max(1, Math.ceil((openedAt + options.breakerOpenMs - Date.now()) / 1000))

  return {
    load: () => ({
      inFlight: options.maxConcurrency - limiter.executionSlots,
      queued: options.maxQueue - limiter.queueSlots,
      breaker: breakerStateOf(breaker.state),
    }),
    async execute (call, budget, budgetMs) {
      try {
        let started = false
        // The retry policy, innermost, counts its attempts in the context it passes down (from 0).
        const running = policy.execute((context) => {
          started = true
          return call(((context as { attempt?: number }).attempt ?? 0) + 1)
        }, budget)
        return await raceQueue(running, budgetMs * QUEUE_SHARE_OF_BUDGET, () => started)
      } catch (error) {
        if (error instanceof BrokenCircuitError) {
          throw new NxCloudError('breaker-open', 'NxCloud calls are suspended after repeated failures; retry later',
            { retryAfterSeconds: retryAfterSeconds(), cause: error })
        }
        if (error instanceof BulkheadRejectedError || error === QUEUED_TOO_LONG) {
          throw new NxCloudError('shed', 'Too many NxCloud calls are under way; retry shortly',
            { retryAfterSeconds: SHED_RETRY_AFTER_SECONDS })
        }
        throw error
      }
    },
  }
}

// Cockatiel's isolated state (a manual hold) is never used here; it would block like an open breaker.
function breakerStateOf (state: CircuitState): BreakerState {
  if (state === CircuitState.Closed) return 'closed'
  return state === CircuitState.HalfOpen ? 'half-open' : 'open'
}

const QUEUED_TOO_LONG = new Error('the call waited for a slot past its share of the budget')
// A call may wait for a slot at most this share of its budget, so that once it starts, NxCloud has
// the rest: a timeout is then NxCloud's slowness, and a long wait is our overload (503), not a 504.
const QUEUE_SHARE_OF_BUDGET = 0.5

async function raceQueue<T> (running: Promise<T>, maxWaitMs: number, started: () => boolean): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const waitedTooLong = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { if (!started()) reject(QUEUED_TOO_LONG) }, maxWaitMs)
  })
  // A shed call is dropped by the bulkhead when it dequeues with its (by then aborted) signal.
  running.catch(() => {})
  waitedTooLong.catch(() => {})
  try {
    return await Promise.race([running, waitedTooLong])
  } finally {
    clearTimeout(timer)
  }
}
