/**
 * Lets at most `perInterval` occurrences of something be logged per `intervalMs`: a flood (a Redis outage,
 * a credential-stuffing run) must not flood the log. What it holds back is counted and told once the
 * interval has turned.
 */
export class LogThrottle {
  #intervalStartedAtMs = Number.NEGATIVE_INFINITY
  #admitted = 0
  #heldBack = 0

  constructor (
    private readonly perInterval: number,
    private readonly intervalMs: number
  ) {}

  /**
   * Counts one occurrence: true when it may be logged. When a new interval begins, `onHeldBack` hears how
   * many the last one held back (if any), before this occurrence is judged.
   */
  admit (onHeldBack?: (heldBack: number) => void): boolean {
    const nowMs = Date.now()
    if (nowMs - this.#intervalStartedAtMs >= this.intervalMs) {
      if (this.#heldBack > 0) onHeldBack?.(this.#heldBack)
      this.#intervalStartedAtMs = nowMs
      this.#admitted = 0
      this.#heldBack = 0
    }
    if (this.#admitted >= this.perInterval) {
      this.#heldBack++
      return false
    }
    this.#admitted++
    return true
  }
}
