import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'

const BREAKER_OPEN_MS = 400
const PAST_BREAKER_OPEN_MS = BREAKER_OPEN_MS + 100

t.test('retries: a transient failure is tried again, each attempt signed afresh with its own ts', async (t) => {
  const simulator = await startSimulator(t)
  const { app, logs } = await buildTestApp(t, testConfig(simulator, { NXCLOUD_MAX_ATTEMPTS: '3' }))
  const response = await app.inject(phonesUrl('sim-code-9001'))
  t.equal(response.statusCode, 502)
  t.equal(simulator.calls, 3)
  t.equal(new Set(simulator.receivedSigns).size, 3, 'three distinct signatures: the ts changed every time')
  const attempts = logs.map((line) => JSON.parse(line) as { nxcloud?: { attempt: number } })
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

t.test('retries stay inside NXCLOUD_TIMEOUT_MS: a slow NxCloud is a 504 within the budget, not three budgets', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { NXCLOUD_TIMEOUT_MS: '300', NXCLOUD_MAX_ATTEMPTS: '3' }))
  const startedAt = Date.now()
  const response = await app.inject(phonesUrl('sim-slow-5000'))
  t.equal(response.statusCode, 504)
  t.ok(Date.now() - startedAt < 1_500, 'answered near the budget')
  t.equal(simulator.calls, 1, 'a timeout leaves no budget for another attempt')
})

t.test('circuit breaker: opens once most attempts in its window failed, fails fast while open, lets one probe through, closes on success', async (t) => {
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
  t.match(open.headers['retry-after'], /^\d+$/)
  t.ok(Number(open.headers['retry-after']) >= 1 && Number(open.headers['retry-after']) <= 1)
  t.equal(simulator.calls, 3, 'NxCloud was spared')

  await sleep(PAST_BREAKER_OPEN_MS)
  simulator.answerAs('demo-shop', 'sim-slow-200')
  const [probe, waiting] = await Promise.all([
    app.inject(phonesUrl('demo-shop')),
    sleep(50).then(() => app.inject(phonesUrl('demo-bank'))),
  ])
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
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '2',
    NXCLOUD_MAX_QUEUE: '1',
    NXCLOUD_TIMEOUT_MS: '3000',
    RATE_LIMIT_MAX: '1000',
  }))
  const slow = ['sim-slow-600', 'sim-slow-601', 'sim-slow-602'].map((appkey) => app.inject(phonesUrl(appkey)))
  let slowAnswered = false
  Promise.race(slow).then(() => { slowAnswered = true }, () => {})
  await sleep(100)
  const shed = await app.inject(phonesUrl('sim-slow-603'))
  t.equal(shed.statusCode, 503)
  t.equal(shed.json().type, ProblemTypes.upstreamUnavailable.type)
  t.equal(shed.headers['retry-after'], '1')
  t.notOk(slowAnswered, 'shed at once: before any call ahead of it was answered')
  const answered = await Promise.all(slow)
  t.same(answered.map((response) => response.statusCode), [200, 200, 200], 'two ran, one waited its turn')
})

t.test('bulkhead: a waiting call that can no longer be answered within its budget is a 503, not a timeout of NxCloud', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '1',
    NXCLOUD_MAX_CONNECTIONS: '1',
    NXCLOUD_MAX_QUEUE: '5',
    NXCLOUD_TIMEOUT_MS: '300',
    NXCLOUD_MAX_ATTEMPTS: '1',
  }))
  // A holds the only slot for 250 ms. NxCloud has not answered yet, so A's run so far is all that is known of
  // its latency: B, queued behind it with 300 ms, is shed once that no longer fits in what it has left (~150 ms).
  const [a, b] = await Promise.all([
    app.inject(phonesUrl('sim-slow-250')),
    sleep(20).then(() => app.inject(phonesUrl('sim-slow-10'))),
  ])
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 503, 'B never reached NxCloud: shed, not reported as NxCloud\'s slowness')
  t.equal(b.json().type, ProblemTypes.upstreamUnavailable.type)
  t.equal(simulator.calls, 1)
})

t.test('NXCLOUD_MAX_CONCURRENCY above NXCLOUD_MAX_CONNECTIONS is refused', async (t) => {
  const simulator = await startSimulator(t)
  t.throws(() => testConfig(simulator, { NXCLOUD_MAX_CONCURRENCY: '10', NXCLOUD_MAX_CONNECTIONS: '5' }), /must not exceed NXCLOUD_MAX_CONNECTIONS/)
})
