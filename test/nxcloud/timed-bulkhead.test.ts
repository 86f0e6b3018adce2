import { setImmediate as settled } from 'node:timers/promises'
import t from 'tap'
import { createTimedBulkhead, ShedError, type TimedBulkhead } from '../../src/nxcloud/timed-bulkhead.js'
import type { UpstreamLatency } from '../../src/nxcloud/upstream-latency.js'

const LATENCY_MS = 1_000
// Two rounds of calls fit (2 s); a third would end at 3 s.
const BUDGET_MS = 2_500

/** A latency that says what the test wants, and a call the test ends when it wants. */
function fixedLatency (typicalMs: number | undefined, slowMs = typicalMs): UpstreamLatency {
  return { typicalMs: () => typicalMs, slowMs: () => slowMs, record () {} }
}

interface HeldCall {
  started: boolean
  finish (): void
  run: () => Promise<string>
}

function heldCall (name: string): HeldCall {
  let finish = () => {}
  const call: HeldCall = {
    started: false,
    finish: () => finish(),
    run: () => {
      call.started = true
      return new Promise((resolve) => { finish = () => resolve(name) })
    },
  }
  return call
}

async function outcomeOf (running: Promise<string>): Promise<string> {
  try {
    return await running
  } catch (error) {
    if (error instanceof ShedError) return 'shed'
    throw error
  }
}

function bulkheadOf (latency: UpstreamLatency, maxWaiting = 100): TimedBulkhead {
  return createTimedBulkhead({ concurrency: 2, maxWaiting, latency })
}

t.test('a call waits while the calls ahead and its own fit in its budget; beyond, it is shed on arrival with the wait it would have had', async (t) => {
  const bulkhead = bulkheadOf(fixedLatency(LATENCY_MS))
  const calls = ['a', 'b', 'c', 'd', 'e'].map(heldCall)
  const outcomes = calls.map((call) => outcomeOf(bulkhead.run(call.run, BUDGET_MS)))
  t.same(calls.map((call) => call.started), [true, true, false, false, false], 'two run, the others wait or are shed')
  t.equal(bulkhead.waiting, 2, 'c and d wait: a slot frees at 1 s, they end at 2 s')

  const shed = await bulkhead.run(heldCall('f').run, BUDGET_MS).catch((error: unknown) => error)
  t.type(shed, ShedError, 'a third round would end at 3 s: shed on arrival')
  t.ok((shed as ShedError).expectedWaitMs >= LATENCY_MS, 'with the wait of the calls ahead of it')

  for (const call of calls.slice(0, 2)) call.finish()
  await settled()
  t.same(calls.map((call) => call.started), [true, true, true, true, false], 'freed slots go to the waiting calls, in order')
  for (const call of calls.slice(2, 4)) call.finish()
  t.same(await Promise.all(outcomes), ['a', 'b', 'c', 'd', 'shed'])
  t.same([bulkhead.running, bulkhead.waiting], [0, 0])
})

t.test('a waiting call whose budget runs short is shed then, and never runs', async (t) => {
  // Nothing fits in 50 ms beside a 40 ms call once 10 ms have gone.
  const bulkhead = bulkheadOf(fixedLatency(0, 40))
  const running = [heldCall('a'), heldCall('b')]
  for (const call of running) bulkhead.run(call.run, BUDGET_MS).catch(() => {})
  const waiting = heldCall('c')
  t.equal(await outcomeOf(bulkhead.run(waiting.run, 50)), 'shed')
  t.notOk(waiting.started)
  t.equal(bulkhead.waiting, 0)
  for (const call of running) call.finish()
})

t.test('a freed slot skips a waiting call that no longer has time for a call', async (t) => {
  let slowMs = 0
  const bulkhead = bulkheadOf({ typicalMs: () => 0, slowMs: () => slowMs, record () {} })
  const running = [heldCall('a'), heldCall('b')]
  for (const call of running) bulkhead.run(call.run, BUDGET_MS).catch(() => {})
  const [late, next] = [heldCall('late'), heldCall('next')]
  const lateOutcome = outcomeOf(bulkhead.run(late.run, 100))
  const nextOutcome = outcomeOf(bulkhead.run(next.run, BUDGET_MS))
  // NxCloud slowed down: a call now takes a second, which the first waiter no longer has.
  slowMs = LATENCY_MS
  running[0]?.finish()
  t.equal(await lateOutcome, 'shed')
  await settled()
  t.ok(next.started, 'the slot went to the next waiter')
  t.notOk(late.started)
  next.finish()
  running[1]?.finish()
  t.equal(await nextOutcome, 'next')
})

t.test('before NxCloud has answered once, a call waits; NXCLOUD_MAX_QUEUE bounds how many', async (t) => {
  const bulkhead = bulkheadOf(fixedLatency(undefined), 1)
  const calls = ['a', 'b', 'c', 'd'].map(heldCall)
  const outcomes = calls.map((call) => outcomeOf(bulkhead.run(call.run, BUDGET_MS)))
  t.equal(bulkhead.waiting, 1, 'nothing says it cannot be answered in time: c waits')
  t.equal(await outcomes[3], 'shed', 'd is past the memory guard')
  for (const call of calls) call.finish()
  await settled()
  calls[2]?.finish()
  t.same(await Promise.all(outcomes), ['a', 'b', 'c', 'shed'])
})
