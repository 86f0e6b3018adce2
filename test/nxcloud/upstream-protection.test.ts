import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { parseExposition, valueOf } from '../metrics/prometheus-text.js'
import { eventually } from '../support/eventually.js'
import { fakeDate } from '../support/fake-date.js'
import { parseLogLines } from '../support/log-lines.js'

// The breaker's open time is passed on a fake Date: cockatiel compares Date.now() with when it opened.
const BREAKER_OPEN_MS = 5_000
const PAST_BREAKER_OPEN_MS = BREAKER_OPEN_MS + 1

/** Calls running and calls waiting for a slot, as the metrics read them from the bulkhead. */
async function upstreamLoad (app: FastifyInstance): Promise<{ inFlight: number | undefined, queued: number | undefined }> {
  const { samples } = parseExposition(await app.metrics.registry.metrics())
  return { inFlight: valueOf(samples, 'nxcloud_bff_upstream_calls_in_flight'), queued: valueOf(samples, 'nxcloud_bff_upstream_calls_queued') }
}

t.test('retries: a transient failure is tried again, each attempt signed afresh with its own ts', async (t) => {
  const simulator = await startSimulator(t)
  const { app, logs } = await buildTestApp(t, testConfig(simulator, { NXCLOUD_MAX_ATTEMPTS: '3' }))
  const response = await app.inject(phonesUrl('sim-code-9001'))
  t.equal(response.statusCode, 502)
  t.equal(simulator.calls, 3)
  t.equal(new Set(simulator.receivedSigns).size, 3, 'three distinct signatures: the ts changed every time')
  const attempts = parseLogLines<{ nxcloud?: { attempt: number } }>(logs)
    .flatMap((line) => (line.nxcloud === undefined ? [] : [line.nxcloud.attempt]))
  t.same(attempts, [1, 2, 3], 'one log line per attempt')
})

t.test('retries: codes about the request or the tenant are not retried', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { NXCLOUD_MAX_ATTEMPTS: '3', CACHE_NEGATIVE_TTL_SECONDS: '0' }))
  for (const appkey of ['sim-code-9000', 'sim-code-9008', 'sim-code-9010', 'sim-code-1003', 'sim-http-404', 'sim-bad-json']) {
    simulator.resetCalls()
    await app.inject(phonesUrl(appkey))
    t.equal(simulator.calls, 1, `${appkey} is asked once`)
  }
})

t.test('retries stay inside NXCLOUD_TIMEOUT_MS: a slow NxCloud is a 504 after one attempt, not three budgets', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { NXCLOUD_TIMEOUT_MS: '300', NXCLOUD_MAX_ATTEMPTS: '3' }))
  const response = await app.inject(phonesUrl('sim-slow-5000'))
  t.equal(response.statusCode, 504)
  t.equal(simulator.calls, 1, 'a timeout leaves no budget for another attempt: the budget is the whole call\'s')
})

t.test('circuit breaker: opens once most attempts in its window failed, fails fast while open, lets one probe through, closes on success', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_ATTEMPTS: '1',
    NXCLOUD_BREAKER_MIN_CALLS: '3',
    NXCLOUD_BREAKER_OPEN_MS: String(BREAKER_OPEN_MS),
    CACHE_TTL_SECONDS: '0',
  }))
  simulator.answerAs('demo-shop', 'sim-http-503')
  for (let call = 0; call < 3; call++) t.equal((await app.inject(phonesUrl('demo-shop'))).statusCode, 502)
  t.equal(simulator.calls, 3)

  const open = await app.inject(phonesUrl('demo-bank'))
  t.equal(open.statusCode, 503, 'open: every tenant fails fast')
  t.equal(open.json().type, ProblemTypes.upstreamUnavailable.type)
  t.equal(open.headers['retry-after'], String(BREAKER_OPEN_MS / 1000), 'Retry-After: the seconds the breaker stays open')
  t.equal(simulator.calls, 3, 'NxCloud was spared')

  clock.tick(PAST_BREAKER_OPEN_MS)
  // A probe slow enough that the second caller surely arrives while it is under way.
  simulator.answerAs('demo-shop', 'sim-slow-1000')
  const probing = app.inject(phonesUrl('demo-shop'))
  await eventually(() => simulator.calls === 4, { what: 'the probe to reach NxCloud' })
  const [probe, waiting] = await Promise.all([probing, app.inject(phonesUrl('demo-bank'))])
  t.equal(probe.statusCode, 200, 'half-open: the probe reached NxCloud and succeeded')
  t.equal(waiting.statusCode, 200, 'a caller during the probe waited for its outcome, then went through')
  t.equal(simulator.calls, 5, 'one probe at a time, then the waiting caller')
  t.equal((await app.inject(phonesUrl('demo-empty'))).statusCode, 200, 'closed again')
})

t.test('circuit breaker: 9008, 9010 and 9000 are answers, not failures, and never open it', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { NXCLOUD_BREAKER_MIN_CALLS: '2', CACHE_NEGATIVE_TTL_SECONDS: '0' }))
  for (const appkey of ['sim-code-9008', 'sim-code-9010', 'sim-code-9000', 'sim-code-9008']) await app.inject(phonesUrl(appkey))
  t.equal((await app.inject(phonesUrl('demo-shop'))).statusCode, 200)
})

t.test('bulkhead: past NXCLOUD_MAX_CONCURRENCY calls and the queue, a call is shed at once with 503 and Retry-After', async (t) => {
  const simulator = await startSimulator(t)
  // Slow calls that hold both slots and the queue far longer than the steps below take on a busy machine;
  // the budget lets the queued one wait its turn (up to half of it).
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '2',
    NXCLOUD_MAX_QUEUE: '1',
    NXCLOUD_TIMEOUT_MS: '10000',
    RATE_LIMIT_MAX: '1000',
  }))
  const slow = ['sim-slow-1500', 'sim-slow-1501', 'sim-slow-1502'].map((appkey) => app.inject(phonesUrl(appkey)))
  t.same(await eventually(async () => {
    const load = await upstreamLoad(app)
    return load.inFlight === 2 && load.queued === 1 && load
  }, { what: 'two calls to run and one to queue' }), { inFlight: 2, queued: 1 }, 'both slots and the queue are taken')
  const shed = await app.inject(phonesUrl('sim-slow-1503'))
  t.equal(shed.statusCode, 503)
  t.equal(shed.json().type, ProblemTypes.upstreamUnavailable.type)
  t.equal(shed.headers['retry-after'], '1')
  const answered = await Promise.all(slow)
  t.same(answered.map((response) => response.statusCode), [200, 200, 200], 'two ran, one waited its turn')
  t.equal(simulator.calls, 3, 'the shed call never reached NxCloud: shed at once, not queued')
})

t.test('bulkhead: a waiting call that can no longer be answered within its budget is a 503, not a timeout of NxCloud', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '1',
    NXCLOUD_MAX_CONNECTIONS: '1',
    NXCLOUD_MAX_QUEUE: '5',
    NXCLOUD_TIMEOUT_MS: '2000',
    NXCLOUD_MAX_ATTEMPTS: '1',
  }))
  // A holds the only slot for its whole budget of 2 s (NxCloud outlasts it). NxCloud has not answered yet,
  // so A's run so far is all that is known of its latency: B, queued behind it, is shed once that no
  // longer fits in what B has left, long before A lets go, however busy the machine.
  const holding = app.inject(phonesUrl('sim-slow-10000'))
  await eventually(() => simulator.calls === 1, { what: 'A to reach NxCloud' })
  const [a, b] = await Promise.all([holding, app.inject(phonesUrl('sim-slow-10'))])
  t.equal(a.statusCode, 504, 'A: NxCloud\'s slowness')
  t.equal(b.statusCode, 503, 'B never reached NxCloud: shed, not reported as NxCloud\'s slowness')
  t.equal(b.json().type, ProblemTypes.upstreamUnavailable.type)
  t.equal(simulator.calls, 1)
})

t.test('NXCLOUD_MAX_CONCURRENCY above NXCLOUD_MAX_CONNECTIONS is refused', async (t) => {
  const simulator = await startSimulator(t)
  t.throws(() => testConfig(simulator, { NXCLOUD_MAX_CONCURRENCY: '10', NXCLOUD_MAX_CONNECTIONS: '5' }), /must not exceed NXCLOUD_MAX_CONNECTIONS/)
})
