import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { DEMO_TENANTS, type DemoTenant } from '../simulator/demo-tenants.js'
import { fakeDate } from '../support/fake-date.js'

// Just past a one-second TTL, on a fake Date: the service ages entries, and the in-process store expires them, by Date.now().
const PAST_ONE_SECOND_MS = 1_100
const CONCURRENT_CALLERS = 10
const MIB = 1024 * 1024

function maxAgeOf (response: LightMyRequestResponse): number {
  const match = /^private, max-age=(\d+), stale-while-revalidate=\d+, stale-if-error=\d+$/.exec(String(response.headers['cache-control']))
  if (match?.[1] === undefined) throw new Error(`unexpected cache-control: ${String(response.headers['cache-control'])}`)
  return Number(match[1])
}

function ageOf (response: LightMyRequestResponse): number {
  return Number(response.headers['age'])
}

t.test('in-process cache: the first call is a MISS from NxCloud, the next a HIT with no upstream call', async (t) => {
  const simulator = await startSimulator(t)
  const { app, config } = await buildTestApp(t, testConfig(simulator, { CACHE_TTL_SECONDS: '120' }))
  t.equal(config.REDIS_URL, undefined, 'no Redis: the in-process cache is in use')

  const miss = await app.inject(phonesUrl('demo-shop'))
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  t.equal(ageOf(miss), 0)
  t.equal(miss.headers['cache-control'], 'private, max-age=120, stale-while-revalidate=60, stale-if-error=86400')
  t.equal(simulator.calls, 1)

  const hit = await app.inject(phonesUrl('demo-shop'))
  t.equal(hit.statusCode, 200)
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, miss.body, 'a hit sends the bytes the miss produced')
  t.ok(Number.isInteger(ageOf(hit)) && ageOf(hit) >= 0, 'Age is a whole number of seconds')
  t.equal(maxAgeOf(hit), 120, 'max-age is the freshness lifetime; Age says how much of it is gone (RFC 9111 §4.2)')
  t.equal(simulator.calls, 1, 'the hit did not reach NxCloud')
})

t.test('in-process cache: with no stale windows an entry expires after CACHE_TTL_SECONDS and the next call goes upstream again', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const noStale = { CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0', CACHE_STALE_IF_ERROR_SECONDS: '0' }
  const { app } = await buildTestApp(t, testConfig(simulator, { CACHE_TTL_SECONDS: '1', ...noStale }))

  const first = await app.inject(phonesUrl('demo-shop'))
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal(first.headers['cache-control'], 'private, max-age=1, stale-while-revalidate=0, stale-if-error=0')
  clock.tick(PAST_ONE_SECOND_MS)

  const afterExpiry = await app.inject(phonesUrl('demo-shop'))
  t.equal(afterExpiry.statusCode, 200)
  t.equal(afterExpiry.headers['x-cache'], 'MISS')
  t.equal(ageOf(afterExpiry), 0, 'the list was read again just now')
  t.equal(simulator.calls, 2)
})

t.test('CACHE_TTL_SECONDS=0 turns caching off: every call is a no-store MISS that reaches NxCloud', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { CACHE_TTL_SECONDS: '0' }))

  for (let call = 1; call <= 3; call++) {
    const response = await app.inject(phonesUrl('demo-shop'))
    t.equal(response.statusCode, 200)
    t.equal(response.headers['x-cache'], 'MISS', `call ${call} is a MISS`)
    t.equal(response.headers['cache-control'], 'no-store')
    t.equal(simulator.calls, call, `call ${call} reached NxCloud`)
  }
})

t.test('concurrent callers for the same tenant share one upstream call', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))

  const responses = await Promise.all(
    Array.from({ length: CONCURRENT_CALLERS }, () => app.inject(phonesUrl('sim-slow-300')))
  )
  t.same(responses.map((response) => response.statusCode), Array(CONCURRENT_CALLERS).fill(200))
  const bodies = new Set(responses.map((response) => response.body))
  t.equal(bodies.size, 1, 'every caller got the same list')
  t.equal(simulator.calls, 1, 'exactly one upstream call for ten callers')
})

// Three tenants whose lists are about 0.4 MiB each: two fit under a 1 MiB memory bound, three do not.
const PHONES_PER_LARGE_TENANT = 1_400
const LARGE_TENANTS = ['large-a', 'large-b', 'large-c']

function largeTenants (): Record<string, DemoTenant> {
  const template = DEMO_TENANTS['demo-bank']?.phones?.[0]
  if (template === undefined) throw new Error('demo-bank has no phone to copy')
  const phones = Array.from({ length: PHONES_PER_LARGE_TENANT }, (_, index) => ({ ...template, display_phone_number: `+1 555 ${String(index).padStart(7, '0')}` }))
  return Object.fromEntries(LARGE_TENANTS.map((appkey) => [appkey, { owner: 'self', phones }]))
}

t.test('CACHE_MEMORY_MAX_MB bounds the in-process cache in bytes, evicting the least recently used tenant', async (t) => {
  const simulator = await startSimulator(t, { tenants: largeTenants() })
  // Each list is kept as text and as UTF-8 bytes: about 0.8 MiB a tenant, two fit in 2 MiB.
  const { app } = await buildTestApp(t, testConfig(simulator, { CACHE_MEMORY_MAX_MB: '2' }))
  const [a = '', b = '', c = ''] = LARGE_TENANTS
  const cacheOf = async (appkey: string) => {
    const response = await app.inject(phonesUrl(appkey))
    t.equal(response.statusCode, 200, `${appkey} answers 200`)
    t.ok(response.body.length > 0.3 * MIB && response.body.length < 0.45 * MIB, `${appkey}'s list is about 0.4 MiB (${response.body.length} bytes)`)
    return response.headers['x-cache']
  }

  t.equal(await cacheOf(a), 'MISS')
  t.equal(await cacheOf(b), 'MISS')
  t.equal(await cacheOf(a), 'HIT', `${a} is now the most recently used`)
  t.equal(await cacheOf(c), 'MISS', 'a third list would pass the bound: the cache evicts one')
  t.equal(simulator.calls, 3)

  t.equal(await cacheOf(a), 'HIT', 'the recently used tenant stayed')
  t.equal(await cacheOf(c), 'HIT', 'the newest tenant stayed')
  t.equal(simulator.calls, 3)
  t.equal(await cacheOf(b), 'MISS', 'the least recently used tenant was evicted')
  t.equal(simulator.calls, 4)
})
