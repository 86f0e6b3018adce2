// Enough attempts to smooth one slow tenant out, few enough to follow NxCloud when its latency shifts.
const RECENT_ATTEMPTS = 64
const TYPICAL_SHARE = 0.5
const SLOW_SHARE = 0.9

/** How long NxCloud has been taking, from the durations of the last attempts that went out. */
export interface UpstreamLatency {
  /** The median: how often, on average, a call gives its slot back. Undefined before any attempt ended. */
  typicalMs (): number | undefined
  /** The 90th percentile: what a call should have left of its budget to be answered in time. */
  slowMs (): number | undefined
  record (durationMs: number): void
}

export function createUpstreamLatency (): UpstreamLatency {
  const recent: number[] = []
  let next = 0
  let sorted: number[] | undefined

  // Sorted at most once per recorded attempt, however often the queue asks.
  const percentile = (share: number): number | undefined => {
    if (recent.length === 0) return undefined
    sorted ??= [...recent].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]
  }

  return {
    typicalMs: () => percentile(TYPICAL_SHARE),
    slowMs: () => percentile(SLOW_SHARE),
    record (durationMs) {
      recent[next] = durationMs
      next = (next + 1) % RECENT_ATTEMPTS
      sorted = undefined
    },
  }
}
