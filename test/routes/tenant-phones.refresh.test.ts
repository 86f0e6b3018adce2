import t from 'tap'
import type { Test } from 'tap'
import { Scopes } from '../../src/auth/caller.js'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { TEST_REDIS_URL, buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { eventually } from '../support/eventually.js'

const refreshUrl = (appkey: string) => `${phonesUrl(appkey)}/refresh`

interface Body { fetchedAt: string }

async function startTwoInstances (t: Test) {
  const simulator = await startSimulator(t)
  const refresher = issue('ops-console', ['demo-shop'], [Scopes.phonesRead, Scopes.cacheRefresh])
  const reader = issue('billing-svc', '*')
  const file = writeApiKeyFile(t, [refresher.entry, reader.entry])
  const config = testConfig(simulator, { ...apiKeyEnv(file), REDIS_URL: TEST_REDIS_URL })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)
  return { simulator, a: a.app, b: b.app, refresher: refresher.key, reader: reader.key }
}

t.test('POST …/refresh with cache:refresh reads NxCloud now, answers the new list and every instance serves it', async (t) => {
  const { simulator, a, b, refresher, reader } = await startTwoInstances(t)
  const first = await b.inject({ url: phonesUrl('demo-shop'), headers: { 'x-api-key': reader } })
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal((await b.inject({ url: phonesUrl('demo-shop'), headers: { 'x-api-key': reader } })).headers['x-cache'], 'HIT')

  const refreshed = await a.inject({ method: 'POST', url: refreshUrl('demo-shop'), headers: { 'x-api-key': refresher } })
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.headers['x-cache'], 'MISS')
  t.match(refreshed.headers['cache-status'], /^nxcloud-bff; fwd=request; fwd-status=200; stored/)
  t.ok(Date.parse(refreshed.json<Body>().fetchedAt) >= Date.parse(first.json<Body>().fetchedAt))
  t.not(refreshed.headers['etag'], first.headers['etag'], 'a new list, a new tag')
  t.equal(simulator.calls, 2, 'the refresh asked NxCloud although the entry was fresh')

  // The other instance hears of the refresh through Redis (test/cache/tiered-phone-list-store.test.ts), not at once.
  const afterwards = await eventually(async () => {
    const answer = await b.inject({ url: phonesUrl('demo-shop'), headers: { 'x-api-key': reader } })
    return answer.body !== first.body && answer
  }, { what: 'the other instance to answer a list other than its old copy' })
  t.equal(afterwards.headers['x-cache'], 'HIT')
  t.equal(afterwards.body, refreshed.body, 'the other instance serves the refreshed list, not its old copy')
})

t.test('without the scope, or outside the caller\'s tenants, a refresh is refused before NxCloud is asked', async (t) => {
  const { simulator, a, refresher, reader } = await startTwoInstances(t)
  const noScope = await a.inject({ method: 'POST', url: refreshUrl('demo-shop'), headers: { 'x-api-key': reader } })
  t.equal(noScope.statusCode, 403)
  t.equal(noScope.json().type, ProblemTypes.insufficientScope.type)
  const otherTenant = await a.inject({ method: 'POST', url: refreshUrl('demo-bank'), headers: { 'x-api-key': refresher } })
  t.equal(otherTenant.statusCode, 403)
  t.equal(otherTenant.json().type, ProblemTypes.tenantNotAllowed.type)
  const anonymous = await a.inject({ method: 'POST', url: refreshUrl('demo-shop') })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['cache-status'], 'nxcloud-bff; fwd=bypass')
  t.equal(simulator.calls, 0)
})

t.test('a refresh that NxCloud refuses answers its problem; an unknown appkey drops the entry', async (t) => {
  const simulator = await startSimulator(t)
  const refresher = issue('ops-console', '*', [Scopes.phonesRead, Scopes.cacheRefresh])
  const file = writeApiKeyFile(t, [refresher.entry])
  const { app } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), NXCLOUD_MAX_ATTEMPTS: '1' }))
  const headers = { 'x-api-key': refresher.key }
  await app.inject({ url: phonesUrl('demo-shop'), headers })
  simulator.answerAs('demo-shop', 'sim-code-9001')
  const failed = await app.inject({ method: 'POST', url: refreshUrl('demo-shop'), headers })
  t.equal(failed.statusCode, 502)
  t.equal(failed.headers['cache-status'], 'nxcloud-bff; fwd=request; fwd-status=502')
  t.equal((await app.inject({ url: phonesUrl('demo-shop'), headers })).headers['x-cache'], 'HIT', 'a failed refresh keeps the entry')
  simulator.answerAs('demo-shop', 'sim-code-9008')
  t.equal((await app.inject({ method: 'POST', url: refreshUrl('demo-shop'), headers })).statusCode, 404)
  const gone = await app.inject({ url: phonesUrl('demo-shop'), headers })
  t.equal(gone.statusCode, 404, 'the list was dropped and the unknown appkey remembered')
  t.equal(gone.headers['x-cache'], 'HIT')
})
