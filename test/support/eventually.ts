import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * How long `eventually` keeps looking before it fails. Long on purpose: it guards against a hang and
 * asserts no speed; a machine busy with other work may take many times what a quiet one takes.
 */
export const EVENTUALLY_TIMEOUT_MS = 20_000
const POLL_INTERVAL_MS = 10

export interface EventuallyOptions {
  /** What the test waits for, as the failure says it: "timed out waiting for <what>". */
  what: string
  timeoutMs?: number
}

/** What a probe returns while it has not found anything yet. */
type NotYet = false | undefined | null

/**
 * Polls `probe` until it returns something other than false, undefined or null, and resolves with
 * that: `true` for a condition, the thing found for a search. After `timeoutMs` it fails naming
 * `what`; an error the probe throws fails it at once. Timed by `performance.now()` and Node's own
 * timers, so a test that fakes `Date` (test/support/fake-date.ts) does not stop it.
 *
 * @example
 * await eventually(() => simulator.calls >= 1, { what: 'the request to reach NxCloud' })
 * const line = await eventually(() => logLineWith(logs, isAccessLine), { what: 'the access line' })
 */
export async function eventually<T> (probe: () => T | Promise<T>, options: EventuallyOptions): Promise<Exclude<T, NotYet>> {
  const { what, timeoutMs = EVENTUALLY_TIMEOUT_MS } = options
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const found = await probe()
    if (found !== false && found !== undefined && found !== null) return found as Exclude<T, NotYet>
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(POLL_INTERVAL_MS)
  }
}
