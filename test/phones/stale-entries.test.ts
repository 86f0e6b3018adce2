import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { TEST_REDIS_URL, buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { fakeDate } from '../support/fake-date.js'

// Just past a one-second TTL, on a fake Date: the service tells fresh from stale by an entry's
// fetchedAtMs against Date.now(), and the in-process store expires by it too. Entries in Redis are
// kept far longer than that (TTL plus the stale window), so Redis's own clock plays no part.
const PAST_ONE_SECOND_MS = 1_100
const TENANT = 'demo-shop'
// A refresh slow enough that every stale answer below is given while it is still under way, on a busy machine too.
const SLOW_REFRESH = 'sim-slow-1000'
// The tests poll until a refresh lands, on a Date that stands still: the rate limiter's window never
// ends there, and its default (100 requests a window) refused a fast machine's polls before the refresh.
const POLLS_UNLIMITED = { RATE_LIMIT_MAX: '1000000' }

interface Body { fetchedAt: string }

function assertStale (t: Test, response: LightMyRequestResponse, first: LightMyRequestResponse, detail: string): void {
  t.equal(response.statusCode, 200)
  t.equal(response.headers['x-cache'], 'STALE')
  t.equal(response.body, first.body, 'the list cached earlier')
  t.match(response.headers['cache-status'], new RegExp(`^nxcloud-bff; .*detail=${detail}`))
  t.match(response.headers['cache-status'], /ttl=-\d+/, 'a negative ttl: past freshness (RFC 9211)')
  t.ok(Number(response.headers['age']) >= 1, 'Age says how old the list is')
  t.equal(response.headers['cache-control'], first.headers['cache-control'], 'the same lifetime: with Age it tells the list is stale')
}

async function cachedThenStale (t: Test, env: Record<string, string>) {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const { app, config } = await buildTestApp(t, testConfig(simulator, { CACHE_TTL_SECONDS: '1', ...POLLS_UNLIMITED, ...env }))
  const first = await app.inject(phonesUrl(TENANT))
  t.equal(first.headers['x-cache'], 'MISS')
  clock.tick(PAST_ONE_SECOND_MS)
  return { simulator, app, config, first }
}

t.test('stale-while-revalidate: the caller gets the stale list at once, one refresh reaches NxCloud, the next caller gets the new list', async (t) => {
  const { simulator, app, first } = await cachedThenStale(t, { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '60' })
  // The refresh is slow: a caller that waited for it could not have got the old list.
  simulator.answerAs(TENANT, SLOW_REFRESH)
  const stale = await app.inject(phonesUrl(TENANT))
  assertStale(t, stale, first, 'stale-while-revalidate')
  const alsoStale = await app.inject(phonesUrl(TENANT))
  t.equal(alsoStale.headers['x-cache'], 'STALE', 'served stale while the refresh runs')

  const fresh = await eventually(async () => {
    const answer = await app.inject(phonesUrl(TENANT))
    return answer.headers['x-cache'] === 'HIT' && answer
  }, { what: 'the refreshed list to be answered as a HIT' })
  t.pass('once the refresh is stored, callers get it as a HIT')
  t.ok(Date.parse(fresh.json<Body>().fetchedAt) > Date.parse(first.json<Body>().fetchedAt), 'the refreshed list')
  t.equal(simulator.calls, 2, 'two stale answers, one refresh')
})

t.test('stale-while-revalidate across two instances sharing Redis: one refresh for both', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, CACHE_TTL_SECONDS: '1', CACHE_STALE_WHILE_REVALIDATE_SECONDS: '60', ...POLLS_UNLIMITED })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)
  const first = await a.app.inject(phonesUrl(TENANT))
  clock.tick(PAST_ONE_SECOND_MS)
  simulator.answerAs(TENANT, SLOW_REFRESH)
  const answers = await Promise.all([a, b, a, b].map(({ app }) => app.inject(phonesUrl(TENANT))))
  for (const answer of answers) assertStale(t, answer, first, 'stale-while-revalidate')
  await eventually(async () => (await b.app.inject(phonesUrl(TENANT))).headers['x-cache'] === 'HIT', { what: 'B to read the refreshed list' })
  t.pass('B reads the refreshed list')
  t.equal(simulator.calls, 2, 'exactly one refresh across both instances')
})

// A budget the first fill keeps on a busy machine too; only the slow tenant outlasts it.
const UPSTREAM_BUDGET_MS = '2000'
const TRANSIENT_FAILURES: Array<[string, string]> = [
  ['a timeout', 'sim-slow-10000'],
  ['a reset connection', 'sim-reset'],
  ['HTTP 503', 'sim-http-503'],
  ['a body that is not JSON', 'sim-bad-json'],
  ['code -1', 'sim-code--1'],
  ['code 9001', 'sim-code-9001'],
  ['our credentials refused (1003)', 'sim-code-1003'],
  ['not an integrator (9007)', 'sim-code-9007'],
]

t.test('stale-if-error: a list past its freshness is served when NxCloud fails for a reason that is not the tenant\'s', async (t) => {
  for (const [name, fault] of TRANSIENT_FAILURES) {
    await t.test(name, async (t) => {
      const noRevalidate = { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0', CACHE_STALE_IF_ERROR_SECONDS: '60', NXCLOUD_TIMEOUT_MS: UPSTREAM_BUDGET_MS }
      const { simulator, app, first } = await cachedThenStale(t, noRevalidate)
      simulator.answerAs(TENANT, fault)
      const stale = await app.inject(phonesUrl(TENANT))
      assertStale(t, stale, first, 'stale-if-error')
      t.match(stale.headers['cache-status'], /fwd=stale; fwd-status=50[24]/, 'forwarded because stale, NxCloud failed')
      t.ok(simulator.calls >= 2, 'NxCloud was asked again (a reset socket is retried once)')
    })
  }
})

t.test('stale-if-error with NxCloud down altogether (the simulator stopped)', async (t) => {
  const { simulator, app, first } = await cachedThenStale(t, { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0' })
  await simulator.close()
  for (let call = 0; call < 3; call++) assertStale(t, await app.inject(phonesUrl(TENANT)), first, 'stale-if-error')
})

t.test('9008 and 9010 are NxCloud\'s word on the tenant: the entry is dropped and the answer passed on', async (t) => {
  for (const [fault, kind] of [['sim-code-9008', 'tenantNotFound'], ['sim-code-9010', 'tenantForbidden']] as const) {
    await t.test(fault, async (t) => {
      const { simulator, app } = await cachedThenStale(t, { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0', CACHE_NEGATIVE_TTL_SECONDS: '0' })
      simulator.answerAs(TENANT, fault)
      const refused = await app.inject(phonesUrl(TENANT))
      t.equal(refused.statusCode, ProblemTypes[kind].status)
      t.equal(refused.json().type, ProblemTypes[kind].type)
      simulator.answerAs(TENANT, undefined)
      const next = await app.inject(phonesUrl(TENANT))
      t.equal(next.headers['x-cache'], 'MISS', 'no stale copy was kept')
      t.equal(simulator.calls, 3)
    })
  }
})

t.test('past the stale-if-error window the failure is answered', async (t) => {
  const { simulator, app } = await cachedThenStale(t, { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0', CACHE_STALE_IF_ERROR_SECONDS: '0' })
  simulator.answerAs(TENANT, 'sim-code-9001')
  const failed = await app.inject(phonesUrl(TENANT))
  t.equal(failed.statusCode, 502)
  t.equal(failed.headers['x-cache'], 'MISS')
  t.match(failed.headers['cache-status'], /^nxcloud-bff; fwd=miss; fwd-status=502$/, 'the entry was gone (hard TTL)')
})

t.test('a failure is never served stale when there is nothing cached: 9000 is answered and nothing is stored', async (t) => {
  const { simulator, app } = await cachedThenStale(t, { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0' })
  simulator.answerAs(TENANT, 'sim-code-9000')
  const rejected = await app.inject(phonesUrl(TENANT))
  t.equal(rejected.statusCode, 400, '9000 is about our request, not a transient failure: answered, not hidden')
})

t.test('negative caching: an unknown appkey asked 100 times across two instances costs one NxCloud call', async (t) => {
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_MAX: '1000' })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)
  const first = await a.app.inject(phonesUrl('no-such-app'))
  t.equal(first.statusCode, 404)
  t.equal(first.headers['x-cache'], 'MISS')
  for (let call = 0; call < 99; call++) {
    const again = await (call % 2 === 0 ? b : a).app.inject(phonesUrl('no-such-app'))
    if (again.statusCode !== 404 || again.headers['x-cache'] !== 'HIT') t.fail(`call ${call}: ${again.statusCode} ${String(again.headers['x-cache'])}`)
  }
  const remembered = await b.app.inject(phonesUrl('no-such-app'))
  t.equal(remembered.json().type, ProblemTypes.tenantNotFound.type, 'the same 404 problem')
  t.equal(remembered.json().upstreamCode, 9008)
  t.equal(remembered.json().detail, first.json().detail)
  t.match(remembered.headers['cache-status'], /^nxcloud-bff; hit; detail=negative$/)
  t.equal(simulator.calls, 1)
})

t.test('negative entries expire after CACHE_NEGATIVE_TTL_SECONDS, and 0 turns them off', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const short = await buildTestApp(t, testConfig(simulator, { CACHE_NEGATIVE_TTL_SECONDS: '1' }))
  await short.app.inject(phonesUrl('no-such-app'))
  t.equal((await short.app.inject(phonesUrl('no-such-app'))).headers['x-cache'], 'HIT')
  clock.tick(PAST_ONE_SECOND_MS)
  t.equal((await short.app.inject(phonesUrl('no-such-app'))).headers['x-cache'], 'MISS')
  t.equal(simulator.calls, 2)

  simulator.resetCalls()
  const off = await buildTestApp(t, testConfig(simulator, { CACHE_NEGATIVE_TTL_SECONDS: '0' }))
  await off.app.inject(phonesUrl('no-such-app'))
  t.equal((await off.app.inject(phonesUrl('no-such-app'))).headers['x-cache'], 'MISS')
  t.equal(simulator.calls, 2)
})

t.test('nothing negative but 9008 is remembered', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, NXCLOUD_MAX_ATTEMPTS: '1' }))
  for (const appkey of ['demo-other', 'sim-code-9001', 'sim-code-9000', 'sim-http-500']) {
    await app.inject(phonesUrl(appkey))
    const again = await app.inject(phonesUrl(appkey))
    t.equal(again.headers['x-cache'], 'MISS', `${appkey} is asked again`)
  }
  t.equal(simulator.calls, 8)
})
