// Issue 15: a queue bounded by a count shed 403 of 500 cold tenants that NxCloud, answering at once,
// would all have served within their budget. A call now waits for a slot while it can still be answered.
import t from 'tap'
import type { Test } from 'tap'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { breakerSeries, coldTenantPaths, countOf, getAtOnce, listenOnLoopback, type Answer } from './upstream-load.js'

const NO_LIMIT = '1000000'
const COLD_TENANTS = 500
// The 2 s upstream and 5 s budget, scaled down: the same ratio, a shorter test.
const SLOW_UPSTREAM_MS = 1_000
const BUDGET_MS = 2_500
const CONCURRENCY = 4
const BURST = 40
// Two rounds of CONCURRENCY calls fit in the budget; a third would end at 3 s.
const CAN_FINISH = 2 * CONCURRENCY

t.test('500 concurrent cold tenants against an upstream answering in 20 ms: every one served, none shed', async (t) => {
  const simulator = await startSimulator(t, { latencyMs: 20 })
  const { app } = await buildTestApp(t, testConfig(simulator, { RATE_LIMIT_MAX: NO_LIMIT }))
  const origin = await listenOnLoopback(t, app)

  const answers = await getAtOnce(origin, coldTenantPaths(COLD_TENANTS))
  t.equal(countOf(answers, 200), COLD_TENANTS, 'all served')
  t.equal(simulator.calls, COLD_TENANTS, 'each by a call of its own')
  t.match(await breakerSeries(app), { shed: 0, state: 0, openings: 0 })
})

async function slowUpstreamApp (t: Test) {
  const simulator = await startSimulator(t, { latencyMs: SLOW_UPSTREAM_MS })
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_TIMEOUT_MS: String(BUDGET_MS),
    NXCLOUD_MAX_CONCURRENCY: String(CONCURRENCY),
    NXCLOUD_MAX_CONNECTIONS: String(CONCURRENCY),
    NXCLOUD_MAX_ATTEMPTS: '1',
    // As sensitive as it gets: had a shed call counted, the breaker would open.
    NXCLOUD_BREAKER_MIN_CALLS: '2',
    RATE_LIMIT_MAX: NO_LIMIT,
  }))
  return { simulator, app, origin: await listenOnLoopback(t, app) }
}

function assertServedOrShed (t: Test, answers: Answer[]): Answer[] {
  const shed = answers.filter((answer) => answer.status === 503)
  t.equal(countOf(answers, 504), 0, 'no call waited out its budget')
  t.equal(countOf(answers, 200) + shed.length, answers.length, 'each call was served or shed')
  t.ok(shed.every((answer) => answer.problemType === ProblemTypes.upstreamUnavailable.type && Number(answer.retryAfter) >= 1),
    'each shed call is 503 upstream-unavailable with Retry-After')
  t.ok(countOf(answers, 200) >= CONCURRENCY && countOf(answers, 200) <= CAN_FINISH, `${countOf(answers, 200)} served: what could finish in time`)
  return shed
}

t.test('an upstream answering in 1 s, a 2.5 s budget: what cannot be answered in time is shed on arrival, before any NxCloud call', async (t) => {
  const { simulator, app, origin } = await slowUpstreamApp(t)
  t.equal((await getAtOnce(origin, [phonesUrl('demo-shop')]))[0]?.status, 200, 'NxCloud\'s latency has been seen once')
  simulator.resetCalls()

  const answers = await getAtOnce(origin, coldTenantPaths(BURST))
  const shed = assertServedOrShed(t, answers)
  t.equal(simulator.calls, countOf(answers, 200), 'a shed call never reached NxCloud')
  const firstServed = Math.min(...answers.filter((answer) => answer.status === 200).map((answer) => answer.order))
  t.ok(shed.filter((answer) => answer.order < firstServed).length >= BURST - CAN_FINISH,
    'those beyond what can finish were answered before any call was served: at once, not after waiting')
  t.match(await breakerSeries(app), { shed: shed.length, state: 0, openings: 0 })
})

t.test('the same before NxCloud has answered once: no call waits out its budget, none shed reaches NxCloud', async (t) => {
  const { simulator, app, origin } = await slowUpstreamApp(t)
  const answers = await getAtOnce(origin, coldTenantPaths(BURST))
  const shed = assertServedOrShed(t, answers)
  t.equal(simulator.calls, countOf(answers, 200), 'a shed call never reached NxCloud')
  t.match(await breakerSeries(app), { shed: shed.length, state: 0, openings: 0 })
})
