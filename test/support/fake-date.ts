import { install, type Clock } from '@sinonjs/fake-timers'

interface Teardown {
  teardown (fn: () => unknown): void
}

/**
 * A fake `Date` for one test, starting at the real now; every timer stays real. The test moves it
 * with `clock.tick(ms)` instead of sleeping out a TTL or a window. Sound wherever the code under test
 * reads `Date.now()` to age something (the phone-list service's freshness and stale windows from an
 * entry's `fetchedAtMs`, the memory tier's expiry, the JWKS refetch cooldown, cockatiel's breaker)
 * while sockets, Redis commands and the simulator's delays run on real timers, which `Date` does not
 * drive. Not for what Redis expires itself: EXPIRE follows Redis's clock, not this one.
 *
 * @example
 * const clock = fakeDate(t)
 * await app.inject(phonesUrl('demo-shop'))
 * clock.tick(PAST_ONE_SECOND_MS)
 */
export function fakeDate (t: Teardown): Clock {
  const clock = install({ toFake: ['Date'], now: Date.now() })
  t.teardown(() => { clock.uninstall() })
  return clock
}
