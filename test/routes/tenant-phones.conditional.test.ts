import t from 'tap'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'

const STRONG_ETAG = /^"[A-Za-z0-9_-]{32}"$/

t.test('a list carries a strong ETag; If-None-Match with it answers 304 with the cache headers and no body', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const miss = await app.inject(phonesUrl('demo-shop'))
  const etag = String(miss.headers['etag'])
  t.match(etag, STRONG_ETAG)

  const hit = await app.inject(phonesUrl('demo-shop'))
  t.equal(hit.headers['etag'], etag, 'the tag was made once, when the list was stored')

  for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const notModified = await app.inject({ url: phonesUrl('demo-shop'), headers: { 'if-none-match': ifNoneMatch } })
    t.equal(notModified.statusCode, 304, `If-None-Match: ${ifNoneMatch}`)
    t.equal(notModified.body, '')
    t.equal(notModified.headers['etag'], etag)
    t.equal(notModified.headers['x-cache'], 'HIT')
    t.equal(notModified.headers['cache-control'], hit.headers['cache-control'])
    t.match(notModified.headers['cache-status'], /^nxcloud-bff; hit; ttl=\d+$/)
    t.ok(notModified.headers['age'] !== undefined)
  }
  const changed = await app.inject({ url: phonesUrl('demo-shop'), headers: { 'if-none-match': '"something-else"' } })
  t.equal(changed.statusCode, 200)
  t.equal(changed.body, miss.body)
  t.equal(simulator.calls, 1)
})

t.test('another list has another tag', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const shop = await app.inject(phonesUrl('demo-shop'))
  const bank = await app.inject(phonesUrl('demo-bank'))
  t.not(shop.headers['etag'], bank.headers['etag'])
  const crossed = await app.inject({ url: phonesUrl('demo-bank'), headers: { 'if-none-match': String(shop.headers['etag']) } })
  t.equal(crossed.statusCode, 200)
})

t.test('Cache-Status on every answer of the route: miss, hit, an upstream failure, a request refused before the cache', async (t) => {
  const simulator = await startSimulator(t)
  const { app, config } = await buildTestApp(t, testConfig(simulator))
  const miss = await app.inject(phonesUrl('demo-shop'))
  // ttl is the whole seconds left: the TTL, or one less once a few milliseconds have passed since the fetch.
  t.match(miss.headers['cache-status'], new RegExp(`^nxcloud-bff; fwd=miss; fwd-status=200; stored; ttl=(${config.CACHE_TTL_SECONDS}|${config.CACHE_TTL_SECONDS - 1})$`))
  t.match((await app.inject(phonesUrl('demo-shop'))).headers['cache-status'], /^nxcloud-bff; hit; ttl=\d+$/)
  const failed = await app.inject(phonesUrl('sim-code-9001'))
  t.equal(failed.statusCode, 502)
  t.equal(failed.headers['cache-status'], 'nxcloud-bff; fwd=miss; fwd-status=502')
  t.equal(failed.headers['x-cache'], 'MISS')
  const invalid = await app.inject(phonesUrl('bad!appkey'))
  t.equal(invalid.statusCode, 400)
  t.equal(invalid.headers['cache-status'], 'nxcloud-bff; fwd=bypass')
  t.equal((await app.inject('/healthz')).headers['cache-status'], undefined, 'only the cached routes speak of the cache')
})

t.test('with caching off every answer is a no-store MISS that bypassed the cache', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { CACHE_TTL_SECONDS: '0' }))
  const response = await app.inject(phonesUrl('demo-shop'))
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal(response.headers['cache-status'], 'nxcloud-bff; fwd=bypass; fwd-status=200')
})
