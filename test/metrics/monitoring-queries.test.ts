import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { request } from 'undici'
import { Scopes } from '../../src/auth/caller.js'
import { listenForScrapes } from '../../src/metrics/metrics-listener.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import {
  dashboardQueries,
  deadQueries,
  readDashboard,
  readRuleGroups,
  recordedNamesOf,
  ruleQueries,
  variableQueries,
} from '../deploy/monitoring.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'
import { scrape, type Scrape } from './prometheus-text.js'

// No dead query: the real service, over its sockets, after a run of traffic of every kind the rules
// and the dashboard look at; then every selector of every rule, panel and variable must find its
// metric, its labels and its values in what the metrics port answers (test/deploy/monitoring.ts says
// exactly how). The label values a query names are those this traffic produces.

// Node's GC series appear once a collection has been observed; allocating makes one happen.
const GC_SERIES = 'nodejs_gc_duration_seconds_sum'
const GC_WAIT_ATTEMPTS = 50
const GC_WAIT_MS = 100

async function scrapeAfterGc (metricsOrigin: string): Promise<Scrape> {
  for (let attempt = 0; attempt < GC_WAIT_ATTEMPTS; attempt++) {
    const scraped = await scrape(metricsOrigin)
    if (scraped.samples.some((sample) => sample.name === GC_SERIES)) return scraped
    Array.from({ length: 100_000 }, (_, index) => ({ index }))
    await sleep(GC_WAIT_MS)
  }
  throw new Error(`no ${GC_SERIES} after ${GC_WAIT_ATTEMPTS} scrapes`)
}

t.test('every metric, label and value the rules and the dashboard query is in a live scrape after traffic', async (t) => {
  const simulator = await startSimulator(t)
  const caller = issue('monitoring-reader', '*', [Scopes.phonesRead], 1_000)
  const stranger = issue('not-in-the-file', ['demo-shop'])
  const file = writeApiKeyFile(t, [caller.entry])
  const { app } = await buildTestApp(t, testConfig(simulator, {
    ...apiKeyEnv(file),
    REDIS_URL: TEST_REDIS_URL,
    // The address limit is reached by the third unknown key; a call at a time, two failures of three attempts open the breaker.
    RATE_LIMIT_MAX: '2',
    NXCLOUD_MAX_ATTEMPTS: '1',
    NXCLOUD_BREAKER_MIN_CALLS: '3',
  }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const metrics = await listenForScrapes(app.metrics.registry, { host: '127.0.0.1', port: 0, log: app.log })
  t.teardown(() => metrics.close())
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const get = async (appkey: string, key: string) => {
    const response = await request(`${origin}${phonesUrl(appkey)}`, { headers: { 'x-api-key': key } })
    await response.body.dump()
    return response.statusCode
  }

  t.equal(await get('demo-shop', caller.key), 200, 'a miss')
  for (let hit = 0; hit < 5; hit++) t.equal(await get('demo-shop', caller.key), 200, 'a hit')
  t.equal(await get('sim-code-1003', caller.key), 502, 'NxCloud rejects our credentials')
  t.equal(await get('sim-code-9001', caller.key), 502, 'NxCloud is busy; the breaker opens')
  t.equal(await get('demo-bank', caller.key), 503, 'the breaker refuses the next miss')
  t.equal(await get('demo-shop', stranger.key), 401)
  t.equal(await get('demo-shop', stranger.key), 401)
  t.equal(await get('demo-shop', stranger.key), 429, 'the address is over its limit')

  const { status, samples } = await scrapeAfterGc(`http://127.0.0.1:${metrics.port}`)
  t.equal(status, 200)
  const groups = readRuleGroups()
  const dashboard = readDashboard()
  const queries = [
    ...ruleQueries(groups),
    ...dashboardQueries(dashboard),
    ...variableQueries(dashboard).map(({ source, selector }) => ({
      source,
      expression: `${selector.metric}{${selector.matchers.map(({ label, operator, value }) => `${label}${operator}${JSON.stringify(value)}`).join(',')}}`,
    })),
  ]
  t.ok(queries.length > 60, `${queries.length} queries`)
  t.same(deadQueries(queries, samples, recordedNamesOf(groups)), [], 'no dead query')
})

t.test('the check does catch a dead query: a misspelt metric, label or value, and an unrecorded name', async (t) => {
  const samples = [{ name: 'nxcloud_bff_cache_lookups_total', labels: { result: 'hit' }, value: 1 }]
  const recorded = new Set(['level:metric:ratio_rate5m'])
  const dead = (expression: string) => deadQueries([{ source: 'q', expression }], samples, recorded)
  t.same(dead('sum(rate(nxcloud_bff_cache_lookups_total{job="x",instance=~"$instance",result=~"hit|stale"}[5m])) + level:metric:ratio_rate5m'), [])
  t.same(dead('nxcloud_bff_cache_lookup_total'), ['q: no series nxcloud_bff_cache_lookup_total'])
  t.same(dead('nxcloud_bff_cache_lookups_total{outcome="hit"}'), ['q: nxcloud_bff_cache_lookups_total has no label outcome'])
  t.same(dead('nxcloud_bff_cache_lookups_total{result="hits"}'), ['q: nxcloud_bff_cache_lookups_total{result="hits"} matches no series (values: hit)'])
  t.same(dead('nxcloud_bff_cache_lookups_total{result=~"stale|miss"}'), ['q: nxcloud_bff_cache_lookups_total{result=~"stale|miss"} matches no series (values: hit)'])
  t.same(dead('nxcloud_bff_cache_lookups_total{result!~"stale|miss"}'), [], 'a negative matcher needs only its label')
  t.same(dead('level:metric:ratio_rate1h'), ['q: level:metric:ratio_rate1h is recorded by no rule'])
})
