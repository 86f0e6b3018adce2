// Issue 15: the breaker wrapped the bulkhead and counted each call it shed as a failure of NxCloud, so one
// burst of cold tenants suspended NxCloud for every tenant while it answered in milliseconds.
import t from 'tap'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { waitFor } from '../server/server-process.js'
import { breakerLines, breakerSeries, coldTenantPaths, countOf, getAtOnce, listenOnLoopback } from './upstream-load.js'

const SHED_CALLS = 1_000
const BURST = 200
const UPSTREAM_LATENCY_MS = 50
const BREAKER_OPEN_MS = 300
const HALF_OPEN_DEADLINE_MS = 10_000
const NO_LIMIT = '1000000'
const WARN = 40
const INFO = 30

t.test('shedding is not failing: 1,000 calls shed here leave the breaker closed, and the next call reaches NxCloud', async (t) => {
  const simulator = await startSimulator(t, { latencyMs: UPSTREAM_LATENCY_MS })
  // One slot and no line: every call but the one running is shed. Two failed attempts would open the breaker.
  const { app, logs } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '1',
    NXCLOUD_MAX_CONNECTIONS: '1',
    NXCLOUD_MAX_QUEUE: '0',
    NXCLOUD_BREAKER_MIN_CALLS: '2',
    RATE_LIMIT_MAX: NO_LIMIT,
  }))
  const origin = await listenOnLoopback(t, app)

  let shed = 0
  let served = 0
  for (let first = 1; shed < SHED_CALLS; first += BURST) {
    const answers = await getAtOnce(origin, coldTenantPaths(BURST, first))
    const refused = answers.filter((answer) => answer.status === 503)
    t.equal(countOf(answers, 200) + refused.length, BURST, 'each call was served or shed, nothing else')
    t.ok(refused.every((answer) => answer.problemType === ProblemTypes.upstreamUnavailable.type && Number(answer.retryAfter) >= 1),
      'each shed call is 503 upstream-unavailable with Retry-After')
    shed += refused.length
    served += countOf(answers, 200)
  }

  t.ok(shed >= SHED_CALLS, `${shed} calls shed`)
  t.equal(simulator.calls, served, 'a shed call never reached NxCloud')
  const series = await breakerSeries(app)
  t.equal(series.shed, shed, 'each counted as shed')
  t.equal(series.state, 0, 'the breaker is closed')
  t.equal(series.openings, 0, 'and never opened')
  t.same(breakerLines(logs), [], 'no breaker line in the log')
  const [next] = await getAtOnce(origin, [phonesUrl('demo-shop')])
  t.equal(next?.status, 200, 'the next call is answered by NxCloud')
})

t.test('NxCloud failing: more than half of at least NXCLOUD_BREAKER_MIN_CALLS attempts failed opens the breaker; ' +
  '503 with Retry-After, a warning with the ratio, and one probe closes it again', async (t) => {
  const simulator = await startSimulator(t)
  const { app, logs } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_ATTEMPTS: '1',
    NXCLOUD_BREAKER_MIN_CALLS: '10',
    NXCLOUD_BREAKER_FAILURE_RATIO: '0.5',
    NXCLOUD_BREAKER_OPEN_MS: String(BREAKER_OPEN_MS),
    CACHE_TTL_SECONDS: '0',
    RATE_LIMIT_MAX: NO_LIMIT,
  }))
  const origin = await listenOnLoopback(t, app)
  const statusOf = async (appkey: string) => (await getAtOnce(origin, [phonesUrl(appkey)]))[0]?.status

  for (let call = 0; call < 6; call++) t.equal(await statusOf('demo-shop'), 200)
  const failing = ['sim-http-500', 'sim-reset', 'sim-http-503', 'sim-reset', 'sim-http-502', 'sim-reset']
  for (const appkey of failing) t.equal(await statusOf(appkey), 502, `${appkey}: NxCloud failed`)
  t.equal((await breakerSeries(app)).state, 0, 'six failures in twelve attempts: half, not more; still closed')

  t.equal(await statusOf('sim-http-500'), 502, 'the seventh failure is answered as itself...')
  const open = (await getAtOnce(origin, [phonesUrl('demo-bank')]))[0]
  t.equal(open?.status, 503, '...and opens the breaker: the next call fails fast')
  t.equal(open?.problemType, ProblemTypes.upstreamUnavailable.type)
  t.ok(Number(open?.retryAfter) >= 1, 'with Retry-After')
  t.equal(simulator.calls, 13, 'NxCloud was spared')
  t.match(await breakerSeries(app), { state: 1, openings: 1 })
  t.match(breakerLines(logs), [{ level: WARN, breaker: { state: 'open', failures: 7, calls: 13, failureRatio: 0.54, openMs: BREAKER_OPEN_MS } }])

  await waitFor('the half-open probe to succeed', HALF_OPEN_DEADLINE_MS, async () => await statusOf('demo-shop') === 200)
  t.match(await breakerSeries(app), { state: 0, openings: 1 })
  t.match(breakerLines(logs).slice(1), [
    { level: INFO, breaker: { state: 'half-open' } },
    { level: INFO, breaker: { state: 'closed' } },
  ], 'half-open, then closed, each logged once')
})
