/**
 * The response fields of the limiter, as draft-ietf-httpapi-ratelimit-headers-11 (May 2026) defines
 * them, and Retry-After on a refusal. Lower case, as Node hands them to the wire and CORS lists them.
 */
export const RateLimitHeaders = {
  /** `"default";q=<max>;w=<window seconds>`: the quota policy the request was counted under. */
  policy: 'ratelimit-policy',
  /** `"default";r=<remaining>;t=<seconds until the window ends>`: the service limit left now. */
  serviceLimit: 'ratelimit',
  /** On a 429 only: seconds until the window ends (the same as `t`, as the draft asks). */
  retryAfter: 'retry-after',
} as const

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

  get windowSeconds (): number {
    return this.#windowSeconds
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

export function serviceLimitFieldValue (remaining: number, resetSeconds: number): string {
  return `${POLICY_NAME};r=${remaining};t=${resetSeconds}`
}
