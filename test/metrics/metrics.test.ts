import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { request } from 'undici'
import { Scopes } from '../../src/auth/caller.js'
import { listenForScrapes } from '../../src/metrics/metrics-listener.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { fakeDate } from '../support/fake-date.js'
import { parseExposition, scrape, valueOf, type Scrape } from './prometheus-text.js'

const TENANT = 'demo-shop'
const PHONES_ROUTE = '/tenants/:appkey/phones'
const HITS = 100
// Past a one-second TTL, on a fake Date: the service ages entries by Date.now().
const PAST_ONE_SECOND_MS = 1_100
// Nothing listens on port 9 (discard) on loopback: connections are refused at once.
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:9'

// Every family the service promises (README "Metrics"), the process defaults included.
const FAMILIES = [
  'nxcloud_bff_http_request_duration_seconds',
  'nxcloud_bff_cache_lookups_total',
  'nxcloud_bff_upstream_calls_total',
  'nxcloud_bff_upstream_call_duration_seconds',
  'nxcloud_bff_upstream_calls_in_flight',
  'nxcloud_bff_upstream_calls_queued',
  'nxcloud_bff_upstream_breaker_state',
  'nxcloud_bff_upstream_breaker_openings_total',
  'nxcloud_bff_redis_up',
  'nxcloud_bff_rate_limited_total',
  'nxcloud_bff_authentication_failures_total',
  'process_cpu_user_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
  'nodejs_heap_size_used_bytes',
]

async function listenOnLoopback (t: Test, app: FastifyInstance): Promise<{ publicOrigin: string, metricsOrigin: string }> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const metrics = await listenForScrapes(app.metrics.registry, { host: '127.0.0.1', port: 0, log: app.log })
  t.teardown(() => metrics.close())
  return {
    publicOrigin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    metricsOrigin: `http://127.0.0.1:${metrics.port}`,
  }
}

async function get (origin: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, cache: unknown }> {
  const response = await request(`${origin}${path}`, { headers })
  await response.body.dump()
  return { status: response.statusCode, cache: response.headers['x-cache'] }
}

async function scrapeInProcess (app: FastifyInstance): Promise<Pick<Scrape, 'families' | 'samples'>> {
  return parseExposition(await app.metrics.registry.metrics())
}

t.test('after 100 cache hits and 1 miss, the metrics listener shows them, and no label carries an appkey or a caller', async (t) => {
  const simulator = await startSimulator(t)
  const caller = issue('metrics-reader', [TENANT], [Scopes.phonesRead], 1_000)
  const stranger = issue('not-in-the-file', [TENANT])
  const file = writeApiKeyFile(t, [caller.entry])
  const { app } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_MAX: '2' }))
  const { publicOrigin, metricsOrigin } = await listenOnLoopback(t, app)
  const withKey = { 'x-api-key': caller.key }

  t.same(await get(publicOrigin, phonesUrl(TENANT), withKey), { status: 200, cache: 'MISS' })
  for (let hit = 0; hit < HITS; hit++) {
    const answer = await get(publicOrigin, phonesUrl(TENANT), withKey)
    if (answer.status !== 200 || answer.cache !== 'HIT') t.fail(`hit ${hit}: ${JSON.stringify(answer)}`)
  }
  // An unknown key twice (401 each), then the address is over its limit of 2 (429, counted before the 401).
  const withUnknownKey = { 'x-api-key': stranger.key }
  t.equal((await get(publicOrigin, phonesUrl(TENANT), withUnknownKey)).status, 401)
  t.equal((await get(publicOrigin, phonesUrl(TENANT), withUnknownKey)).status, 401)
  t.equal((await get(publicOrigin, phonesUrl(TENANT), withUnknownKey)).status, 429)
  t.equal(simulator.calls, 1, 'NxCloud was asked once')

  const { status, contentType, text, families, samples } = await scrape(metricsOrigin)
  t.equal(status, 200)
  t.match(contentType, /^text\/plain; version=0\.0\.4/)
  for (const family of FAMILIES) t.ok(families.has(family), `${family} is exposed`)

  t.equal(valueOf(samples, 'nxcloud_bff_cache_lookups_total', { result: 'hit' }), HITS, '100 hits')
  t.equal(valueOf(samples, 'nxcloud_bff_cache_lookups_total', { result: 'miss' }), 1, '1 miss')
  for (const result of ['stale', 'negative', 'error']) {
    t.equal(valueOf(samples, 'nxcloud_bff_cache_lookups_total', { result }), 0, `no ${result}, and the series is there`)
  }
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_calls_total', { outcome: 'ok', code: '0' }), 1, 'one upstream call, ok, code 0')
  t.equal(samples.filter((sample) => sample.name === 'nxcloud_bff_upstream_calls_total').length, 1, 'and no other')
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_call_duration_seconds_count', { outcome: 'ok' }), 1)
  t.ok((valueOf(samples, 'nxcloud_bff_upstream_call_duration_seconds_sum', { outcome: 'ok' }) ?? 0) > 0, 'its duration')
  const requests = (status: string) => valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_count',
    { route: PHONES_ROUTE, method: 'GET', status })
  t.equal(requests('200'), HITS + 1, 'every answered request timed under its route pattern')
  t.equal(requests('401'), 2)
  t.equal(requests('429'), 1)
  t.equal(valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_bucket', { route: PHONES_ROUTE, method: 'GET', status: '200', le: '+Inf' }), HITS + 1)
  t.equal(valueOf(samples, 'nxcloud_bff_authentication_failures_total', { reason: 'unknown-api-key' }), 2)
  t.equal(valueOf(samples, 'nxcloud_bff_rate_limited_total', { reason: 'address' }), 1)
  t.equal(valueOf(samples, 'nxcloud_bff_rate_limited_total', { reason: 'caller' }), 0)
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_calls_in_flight'), 0)
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_calls_queued'), 0)
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_breaker_state'), 0, 'breaker closed')
  t.equal(valueOf(samples, 'nxcloud_bff_redis_up'), 1)

  for (const secret of [TENANT, 'metrics-reader', caller.key, stranger.key, caller.entry.sha256]) {
    t.notOk(text.includes(secret), `the exposition never names ${secret === TENANT ? 'the appkey' : 'the caller or its key'}`)
  }
  const labelValues = new Set(samples.flatMap((sample) => Object.values(sample.labels)))
  t.notOk([...labelValues].some((value) => value.includes(TENANT) || value.includes('key:')), 'no label value is an appkey or a caller id')

  t.equal((await scrape(publicOrigin)).status, 404, 'the public listener does not serve the metrics')
  t.equal((await scrape(metricsOrigin, '/metrics', 'POST')).status, 404, 'the metrics listener answers GET /metrics only')
  t.equal((await scrape(metricsOrigin, '/')).status, 404)
})

t.test('each cache result is counted where the service decides it: hit and stale in memory, negative, miss', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { CACHE_TTL_SECONDS: '1', CACHE_STALE_WHILE_REVALIDATE_SECONDS: '60' }))
  await app.inject(phonesUrl(TENANT))
  t.equal((await app.inject(phonesUrl(TENANT))).headers['x-cache'], 'HIT')
  clock.tick(PAST_ONE_SECOND_MS)
  t.equal((await app.inject(phonesUrl(TENANT))).headers['x-cache'], 'STALE')
  await app.inject(phonesUrl('sim-code-9008'))
  t.equal((await app.inject(phonesUrl('sim-code-9008'))).statusCode, 404)
  t.equal((await app.inject('/no/such/route')).statusCode, 404)
  t.equal((await app.inject({ method: 'PROPFIND', url: '/healthz' })).statusCode, 405)

  const { samples } = await scrapeInProcess(app)
  const lookups = (result: string) => valueOf(samples, 'nxcloud_bff_cache_lookups_total', { result })
  t.same({ hit: lookups('hit'), stale: lookups('stale'), miss: lookups('miss'), negative: lookups('negative'), error: lookups('error') },
    { hit: 1, stale: 1, miss: 2, negative: 1, error: 0 })
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_calls_total', { outcome: 'nxcloud-error', code: '9008' }), 1)
  t.equal(valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_count', { route: 'unmatched', method: 'GET', status: '404' }), 1,
    'a path no route matched is one label value')
  t.equal(valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_count', { route: 'unmatched', method: 'OTHER', status: '405' }), 1,
    'so is a method the service does not know')
  t.notOk(samples.some((sample) => sample.name === 'nxcloud_bff_redis_up'), 'no Redis configured: no Redis gauge')
})

t.test('every request duration reaches the histogram, past a batch of them and at each scrape, and a scrape counts none twice', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { RATE_LIMIT_MAX: '1000000' }))
  const unmatched = async (count: number) => {
    for (let sent = 0; sent < count; sent++) {
      const status = (await app.inject('/no/such/route')).statusCode
      if (status !== 404) t.fail(`request ${sent}: ${status}`)
    }
  }
  const counted = async () => {
    const { samples } = await scrapeInProcess(app)
    const labels = { route: 'unmatched', method: 'GET', status: '404' }
    return {
      count: valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_count', labels),
      inf: valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }),
    }
  }
  // More than two batches of 1,024 before the first scrape.
  await unmatched(2_500)
  t.same(await counted(), { count: 2_500, inf: 2_500 })
  await unmatched(3)
  t.same(await counted(), { count: 2_503, inf: 2_503 }, 'a scrape sees the requests answered since the last one')
  t.same(await counted(), { count: 2_503, inf: 2_503 }, 'and a scrape with none since adds nothing')
})

t.test('a failing store counts as error, and Redis is down', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: UNREACHABLE_REDIS_URL }))
  t.equal((await app.inject(phonesUrl(TENANT))).statusCode, 200)
  const { samples } = await scrapeInProcess(app)
  t.equal(valueOf(samples, 'nxcloud_bff_cache_lookups_total', { result: 'error' }), 1)
  t.equal(valueOf(samples, 'nxcloud_bff_cache_lookups_total', { result: 'miss' }), 0)
  t.equal(valueOf(samples, 'nxcloud_bff_redis_up'), 0)
})

t.test('upstream outcomes and codes: undocumented codes are "other", a timeout and a refused call have no code', async (t) => {
  const simulator = await startSimulator(t)
  // A budget the calls meant to be answered keep on a busy machine too; only the slow tenant outlasts it.
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_TIMEOUT_MS: '2000',
    NXCLOUD_MAX_ATTEMPTS: '1',
    NXCLOUD_BREAKER_MIN_CALLS: '3',
    CACHE_TTL_SECONDS: '0',
  }))
  await app.inject(phonesUrl('sim-code-123456'))
  await app.inject(phonesUrl('sim-code-1003'))
  await app.inject(phonesUrl('sim-slow-10000'))
  t.equal((await app.inject(phonesUrl(TENANT))).statusCode, 503, 'three failures opened the breaker')

  const { samples } = await scrapeInProcess(app)
  const calls = (outcome: string, code: string) => valueOf(samples, 'nxcloud_bff_upstream_calls_total', { outcome, code })
  t.equal(calls('nxcloud-error', 'other'), 1, 'a code NxCloud does not document')
  t.equal(calls('nxcloud-error', '1003'), 1, 'a code of the authentication block')
  t.equal(calls('timeout', 'none'), 1)
  t.equal(calls('breaker-open', 'none'), 1)
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_call_duration_seconds_count', { outcome: 'breaker-open' }), undefined,
    'a refused call went nowhere: no duration')
  t.equal(valueOf(samples, 'nxcloud_bff_upstream_breaker_state'), 1, 'open')
})

t.test('in flight and queued are read from the bulkhead at scrape time', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, {
    NXCLOUD_MAX_CONCURRENCY: '1',
    NXCLOUD_TIMEOUT_MS: '5000',
    CACHE_TTL_SECONDS: '0',
  }))
  // Two tenants: callers of one tenant would share one call. The first holds the only slot far longer
  // than it takes to see the second queued behind it, however busy the machine (and less than the
  // half of the budget the second may wait).
  const slow = [app.inject(phonesUrl('sim-slow-2000')), app.inject(phonesUrl('sim-slow-10'))]
  const during = await eventually(async () => {
    const { samples } = await scrapeInProcess(app)
    return valueOf(samples, 'nxcloud_bff_upstream_calls_queued') === 1 && samples
  }, { what: 'the second call to queue' })
  t.equal(valueOf(during, 'nxcloud_bff_upstream_calls_in_flight'), 1)
  t.equal(valueOf(during, 'nxcloud_bff_upstream_calls_queued'), 1)
  await Promise.all(slow)
  const after = (await scrapeInProcess(app)).samples
  t.equal(valueOf(after, 'nxcloud_bff_upstream_calls_in_flight'), 0)
  t.equal(valueOf(after, 'nxcloud_bff_upstream_calls_queued'), 0)
})
