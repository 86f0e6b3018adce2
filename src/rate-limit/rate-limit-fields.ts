/**
 * The values of RateLimit-Policy and RateLimit (names in src/http/headers.ts), as
 * draft-ietf-httpapi-ratelimit-headers-11 (May 2026; the syntax is -10's) defines them: Structured Field
 * lists of one item, the quoted policy name with its parameters.
 */

// One policy, whatever the partition (caller or address): a client has a single budget at a time.
const POLICY_NAME = '"default"'

/**
 * The RateLimit-Policy value for a quota, made once per distinct limit: the default one and the few
 * per-key limits of the key file, so the hit path only looks a string up.
 */
export class RateLimitPolicies {
  readonly #windowSeconds: number
  readonly #byMax = new Map<number, string>()

  constructor (windowMs: number) {
    // The draft's window is whole seconds, at least one: a sub-second window is announced as 1 s.
    this.#windowSeconds = Math.max(1, Math.ceil(windowMs / 1000))
  }

  fieldValueFor (max: number): string {
    let value = this.#byMax.get(max)
    if (value === undefined) {
      value = `${POLICY_NAME};q=${max};w=${this.#windowSeconds}`
      this.#byMax.set(max, value)
    }
    return value
  }
}

/** `r`: the requests left in the window; `t`: the seconds until it ends (whole, rounded up). */
export function serviceLimitFieldValue (remaining: number, resetSeconds: number): string {
  return `${POLICY_NAME};r=${remaining};t=${resetSeconds}`
}
