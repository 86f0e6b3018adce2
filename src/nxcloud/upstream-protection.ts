import {
  BrokenCircuitError,
  BulkheadRejectedError,
  ConsecutiveBreaker,
  ExponentialBackoff,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  wrap,
  type IPolicy,
} from 'cockatiel'
import { ProblemError } from '../errors/problem-error.js'

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

// Failures that are about the request or the tenant, not about NxCloud's health.
const NOT_BREAKER_FAILURES = new Set(['tenantNotFound', 'tenantForbidden', 'upstreamRejectedParameters', 'upstreamUnavailable'])

/**
 * Marks an attempt's failure as worth another attempt (transport errors, HTTP 5xx, codes -1 and
 * 9001): the retry policy reads the mark, so the decision stays where the failure is understood.
 */
const retryableFailures = new WeakSet<Error>()

export function markRetryable (error: ProblemError): ProblemError {
  retryableFailures.add(error)
  return error
}

export interface UpstreamProtection {
  /** Runs `call` (one attempt per invocation) under the breaker, the bulkhead and the retry policy. */
  execute<T> (call: (attempt: number) => Promise<T>, budget: AbortSignal, budgetMs: number): Promise<T>
}

/**
 * Cockatiel's policies around every NxCloud call, outermost first: a circuit breaker on consecutive
 * failed calls (fast 503 while open; one probe at a time when half-open), a bulkhead (bounded
 * concurrency and queue; beyond them the call is shed at once), and retries with decorrelated
 * jitter for transient failures, each attempt signed afresh by the caller.
 */
export function createUpstreamProtection (options: UpstreamProtectionOptions): UpstreamProtection {
  const breaker = circuitBreaker(
    handleWhen((error) => !(error instanceof ProblemError && NOT_BREAKER_FAILURES.has(error.kind))),
    { halfOpenAfter: options.breakerOpenMs, breaker: new ConsecutiveBreaker(options.breakerThreshold) }
  )
  const limiter = bulkhead(options.maxConcurrency, options.maxQueue)
  const retrying = retry(handleWhen((error) => retryableFailures.has(error)), {
    maxAttempts: options.maxAttempts - 1,
    backoff: new ExponentialBackoff({ initialDelay: RETRY_INITIAL_DELAY_MS, maxDelay: RETRY_MAX_DELAY_MS }),
  })
  const policy: IPolicy = wrap(breaker, limiter, retrying)
  let openedAt = 0
  breaker.onBreak(() => { openedAt = Date.now() })

  const retryAfterSeconds = () =>
    Math.max(1, Math.ceil((openedAt + options.breakerOpenMs - Date.now()) / 1000))

  return {
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
          throw new ProblemError('upstreamUnavailable', 'NxCloud calls are suspended after repeated failures; retry later',
            { headers: { 'retry-after': retryAfterSeconds() }, cause: error })
        }
        if (error instanceof BulkheadRejectedError || error === QUEUED_TOO_LONG) {
          throw new ProblemError('upstreamUnavailable', 'Too many NxCloud calls are under way; retry shortly',
            { headers: { 'retry-after': SHED_RETRY_AFTER_SECONDS } })
        }
        throw error
      }
    },
  }
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
