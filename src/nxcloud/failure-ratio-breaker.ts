import { CircuitState, SamplingBreaker, type IBreaker } from 'cockatiel'

export interface FailureRatioOptions {
  /** The breaker opens when more than this share of the attempts in the window failed (0 < ratio < 1). */
  failureRatio: number
  /** ...and the window holds at least this many attempts. */
  minCalls: number
  /** The window of recent attempts judged. */
  windowMs: number
}

/** What the window held when it opened the breaker. */
export interface FailureRatioVerdict {
  failures: number
  calls: number
}

// SamplingBreaker takes its minimum as a rate over its window; half a call under the count keeps the
// window's rounding of its buckets from turning "10 calls" into "11".
const HALF_A_CALL = 0.5
const MS_PER_SECOND = 1000

/**
 * Cockatiel's SamplingBreaker, which opens when more than a share of the calls in a time window failed
 * once the window holds enough of them, started afresh after a silence as long as its window and on
 * each closing. It moves its window one bucket per call, so after a silence its buckets still hold
 * counts from long before the window (nine failures an hour ago and one now would open it); and a
 * probe closing the breaker on an answer that is not a failure (9008) would leave the old failures in.
 */
export class FailureRatioBreaker implements IBreaker {
  readonly #options: FailureRatioOptions
  #sampling: SamplingBreaker
  #lastSampleAt = Number.NEGATIVE_INFINITY
  /** Set when the window opened the breaker; undefined when a failed probe reopened it. */
  openedBy: FailureRatioVerdict | undefined

  constructor (options: FailureRatioOptions) {
    this.#options = options
    this.#sampling = this.#fresh()
  }

  get state (): unknown {
    return this.#sampling.state
  }

  set state (value: unknown) {
    this.#sampling.state = value
  }

  success (state: CircuitState): void {
    this.#sampleAt(Date.now())
    this.#sampling.success(state)
  }

  failure (state: CircuitState): boolean {
    this.#sampleAt(Date.now())
    const opens = this.#sampling.failure(state)
    this.openedBy = opens && state === CircuitState.Closed ? verdictOf(this.#sampling.state) : undefined
    return opens
  }

  /** Forgets every call counted. */
  reset (): void {
    this.#sampling = this.#fresh()
  }

  #sampleAt (now: number): void {
    if (now - this.#lastSampleAt >= this.#options.windowMs) this.reset()
    this.#lastSampleAt = now
  }

  #fresh (): SamplingBreaker {
    const { failureRatio, minCalls, windowMs } = this.#options
    return new SamplingBreaker({
      threshold: failureRatio,
      duration: windowMs,
      minimumRps: (minCalls - HALF_A_CALL) * MS_PER_SECOND / windowMs,
    })
  }
}

// The counts SamplingBreaker keeps in its (serialisable) state.
function verdictOf (state: unknown): FailureRatioVerdict | undefined {
  const { currentFailures, currentSuccesses } = state as { currentFailures?: unknown, currentSuccesses?: unknown }
  if (typeof currentFailures !== 'number' || typeof currentSuccesses !== 'number') return undefined
  return { failures: currentFailures, calls: currentFailures + currentSuccesses }
}
