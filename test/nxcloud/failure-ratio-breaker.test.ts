import { CircuitState } from 'cockatiel'
import t from 'tap'
import type { Test } from 'tap'
import { FailureRatioBreaker } from '../../src/nxcloud/failure-ratio-breaker.js'

const WINDOW_MS = 10_000
const OPTIONS = { failureRatio: 0.5, minCalls: 10, windowMs: WINDOW_MS }

// SamplingBreaker reads Date.now itself: the test's clock replaces it, as fake timers would.
function testClock (t: Test): { advance (ms: number): void } {
  const realNow = Date.now
  let now = realNow()
  Date.now = () => now
  t.teardown(() => { Date.now = realNow })
  return { advance: (ms) => { now += ms } }
}

function fail (breaker: FailureRatioBreaker, times: number): boolean[] {
  return Array.from({ length: times }, () => breaker.failure(CircuitState.Closed))
}

t.test('opens once more than the ratio of at least NXCLOUD_BREAKER_MIN_CALLS attempts failed, and says what it counted', async (t) => {
  testClock(t)
  const breaker = new FailureRatioBreaker(OPTIONS)
  t.same(fail(breaker, 9), Array(9).fill(false), 'nine failures: fewer calls than the minimum')
  t.equal(breaker.failure(CircuitState.Closed), true, 'the tenth opens it')
  t.same(breaker.openedBy, { failures: 10, calls: 10 })

  const mixed = new FailureRatioBreaker(OPTIONS)
  for (let call = 0; call < 10; call++) mixed.success(CircuitState.Closed)
  t.same(fail(mixed, 10), Array(10).fill(false), 'ten failures in twenty: half, not more')
  t.equal(mixed.failure(CircuitState.Closed), true, 'eleven in twenty-one')
  t.same(mixed.openedBy, { failures: 11, calls: 21 })
})

t.test('failures a window ago are forgotten after a silence, and when the breaker closes', async (t) => {
  const clock = testClock(t)
  const breaker = new FailureRatioBreaker(OPTIONS)
  fail(breaker, 9)
  clock.advance(60 * 60 * 1000)
  t.equal(breaker.failure(CircuitState.Closed), false, 'nine failures an hour ago and one now: one failure')

  fail(breaker, 8)
  breaker.reset()
  t.same(fail(breaker, 9), Array(9).fill(false), 'after a reset, the count starts again')
})

t.test('a failed probe reopens it, without a window to tell of', async (t) => {
  testClock(t)
  const breaker = new FailureRatioBreaker(OPTIONS)
  t.equal(breaker.failure(CircuitState.HalfOpen), true)
  t.equal(breaker.openedBy, undefined)
})
