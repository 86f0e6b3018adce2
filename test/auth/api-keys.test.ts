import { Writable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { Client } from 'undici'
import { buildApp } from '../../src/app.js'
import { ApiKeyFileError, sha256Hex, type ApiKeyEntry } from '../../src/auth/api-keys.js'
import { ALL_TENANTS, Scopes } from '../../src/auth/caller.js'
import type { Config } from '../../src/config.js'
import { PROBLEM_CONTENT_TYPE } from '../../src/errors/problem-schema.js'
import { ProblemTypes, type ProblemKind } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL, type TestApp } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { eventually } from '../support/eventually.js'
import { logLinesWith, logLineWith, type LogLine } from '../support/log-lines.js'
import { apiKeyEnv, issue, replaceApiKeyFile, writeApiKeyFile } from './api-key-fixture.js'

// Published in the README on purpose; written out here so the test proves src recognises that very key.
const DEMO_KEY_ALL_TENANTS = 'nxbff-demo-key-all-tenants-000000000000000000000000000000'
// The tests poll with real requests; the default limit of 100 a minute is not what they are about.
const GENEROUS_RATE_LIMIT = '10000'
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

interface Harness extends TestApp {
  simulator: NxCloudSimulator
  file: string
}

interface KeyFileLogLine extends LogLine {
  reason?: string
  apiKeys?: { file: string, count: number }
}

async function startHarness (t: Test, entries: ApiKeyEntry[], env: Record<string, string> = {}): Promise<Harness> {
  const simulator = await startSimulator(t)
  const file = writeApiKeyFile(t, entries)
  const config = testConfig(simulator, {
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_MAX: GENEROUS_RATE_LIMIT,
    ...apiKeyEnv(file),
    ...env,
  })
  const testApp = await buildTestApp(t, config)
  return { ...testApp, simulator, file }
}

function withKey (app: FastifyInstance, appkey: string, key: string): Promise<LightMyRequestResponse> {
  return app.inject({ url: phonesUrl(appkey), headers: { 'x-api-key': key } })
}

function assertProblem (t: Test, response: LightMyRequestResponse, kind: ProblemKind): void {
  const { status, type, title } = ProblemTypes[kind]
  t.equal(response.statusCode, status, `${kind} answers ${status}`)
  t.match(response.headers['content-type'], new RegExp(`^${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}(;|$)`))
  t.match(response.headers['x-request-id'], REQUEST_ID, 'the answer carries its request id')
  const problem = response.json<{ type: string, title: string, status: number, requestId: string }>()
  t.equal(problem.type, type)
  t.equal(problem.title, title)
  t.equal(problem.status, status)
  t.equal(problem.requestId, response.headers['x-request-id'])
}

// demo-bank's list, as the simulator holds it: none of it may leak into a denial.
const DEMO_BANK_DATA = /"phones"|Demo Bank|DEMO BANK|\+44|TIER_10K|204410000007001|ONBOARDING/

function assertNoPhoneData (t: Test, response: LightMyRequestResponse): void {
  t.notOk(Object.hasOwn(response.json<object>(), 'phones'), 'the denial has no phones')
  t.notMatch(response.body, DEMO_BANK_DATA, 'the denial carries no phone data')
}

async function redisKeysMatching (pattern: string): Promise<string[]> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    const found: string[] = []
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
      found.push(...keys)
      cursor = next
    } while (cursor !== '0')
    return found
  } finally {
    redis.disconnect()
  }
}

/** Listens on an ephemeral loopback port; a keep-alive client to it, closed in teardown. */
async function listening (t: Test, app: FastifyInstance): Promise<Client> {
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Client(address)
  t.teardown(() => client.close())
  return client
}

function nullSink (): Writable {
  return new Writable({ write (_chunk, _encoding, done) { done() } })
}

async function buildFailure (config: Config): Promise<unknown> {
  try {
    const app = await buildApp(config, { logStream: nullSink() })
    await app.close()
  } catch (error) {
    return error
  }
  return undefined
}

t.test('a valid X-API-Key reads its tenant; the log names the caller and never the key or its hash', async (t) => {
  const shop = issue('shop-service', ['demo-shop'])
  const { app, logs, simulator } = await startHarness(t, [shop.entry])

  const response = await withKey(app, 'demo-shop', shop.key)
  t.equal(response.statusCode, 200)
  t.equal(response.json<{ appkey: string }>().appkey, 'demo-shop')
  t.equal(simulator.calls, 1)

  const completed = logLinesWith(logs, (line) => line.msg === 'request completed')
  t.equal(completed.length, 1)
  t.equal(completed[0]?.callerId, 'key:shop-service', 'the request line names the caller by its id')

  const unknown = issue('never-issued', ['demo-shop'])
  t.equal((await withKey(app, 'demo-shop', unknown.key)).statusCode, 401)
  for (const secret of [shop.key, shop.entry.sha256, unknown.key, unknown.entry.sha256]) {
    t.notOk(logs.some((line) => line.includes(secret)), 'no log line holds a presented key or its hash')
  }
})

t.test('without credentials: 401 problem with an ApiKey challenge, and NxCloud is not called', async (t) => {
  const { app, simulator } = await startHarness(t, [issue('svc', ['demo-shop']).entry])
  const response = await app.inject(phonesUrl('demo-shop'))
  assertProblem(t, response, 'unauthenticated')
  t.match(response.headers['www-authenticate'], 'ApiKey realm="nxcloud-bff"')
  t.notMatch(response.headers['www-authenticate'], 'Bearer', 'no bearer challenge when no JWT is configured')
  t.equal(simulator.calls, 0)
})

t.test('unknown, malformed and ambiguous credentials are 401', async (t) => {
  const shop = issue('svc', ['demo-shop'])
  const { app, simulator } = await startHarness(t, [shop.entry])
  const cases: Array<[string, Record<string, string>]> = [
    ['an unknown well-formed key', { 'x-api-key': issue('stranger', ['demo-shop']).key }],
    ['a key too short to be one (abc)', { 'x-api-key': 'abc' }],
    ['an empty key', { 'x-api-key': '' }],
    ['the valid key and an Authorization header', { 'x-api-key': shop.key, authorization: `Bearer ${shop.key}` }],
    ['the valid key sent as a bearer token', { authorization: `Bearer ${shop.key}` }],
  ]
  for (const [name, headers] of cases) {
    const response = await app.inject({ url: phonesUrl('demo-shop'), headers })
    t.equal(response.statusCode, 401, name)
    t.equal(response.json<{ type: string }>().type, ProblemTypes.unauthenticated.type, name)
    t.match(response.headers['www-authenticate'], 'ApiKey realm="nxcloud-bff"', name)
  }
  t.equal(simulator.calls, 0)
  t.equal((await withKey(app, 'demo-shop', shop.key)).statusCode, 200, 'the valid key alone is accepted')
})

t.test('a key removed from the file by a rewrite is refused without a restart; a key added is accepted', async (t) => {
  const leaving = issue('leaving-service', ['demo-shop'])
  const staying = issue('staying-service', ['demo-shop'])
  const { app, file, logs } = await startHarness(t, [leaving.entry, staying.entry])
  t.equal((await withKey(app, 'demo-shop', leaving.key)).statusCode, 200)

  const arriving = issue('arriving-service', ['demo-shop'])
  replaceApiKeyFile(file, [staying.entry, arriving.entry])

  // The file is polled (apiKeyEnv): the rewrite is in force once a poll has read it.
  await eventually(async () => (await withKey(app, 'demo-shop', leaving.key)).statusCode === 401, { what: 'the removed key to be refused' })
  t.pass('the removed key is refused')
  t.equal((await withKey(app, 'demo-shop', arriving.key)).statusCode, 200, 'the added key is accepted')
  t.equal((await withKey(app, 'demo-shop', staying.key)).statusCode, 200, 'the kept key still works')
  t.ok(logLineWith<KeyFileLogLine>(logs, (line) => line.msg === 'API keys reloaded' && line.apiKeys?.count === 2),
    'the reload is logged with the key count')
})

t.test('a broken file keeps the previous keys and logs an error; a fixed file is then picked up', async (t) => {
  const current = issue('current-service', ['demo-shop'])
  const { app, file, logs } = await startHarness(t, [current.entry])
  const notReloaded = () => logLinesWith<KeyFileLogLine>(logs, (line) => line.msg?.startsWith('API key file not reloaded') === true)

  replaceApiKeyFile(file, '[{"id": "half-written", ')
  await eventually(() => notReloaded().length >= 1, { what: 'invalid JSON to be reported' })
  t.equal(notReloaded()[0]?.level, 50, 'at level error')
  t.match(notReloaded()[0]?.reason, 'is not JSON')
  t.equal((await withKey(app, 'demo-shop', current.key)).statusCode, 200, 'the previous key still works after invalid JSON')

  replaceApiKeyFile(file, JSON.stringify([{ id: 'no-hash', tenants: ['demo-shop'] }]))
  await eventually(() => notReloaded().length >= 2, { what: 'JSON of the wrong shape to be reported' })
  t.match(notReloaded()[1]?.reason, 'is not a list of')
  t.equal((await withKey(app, 'demo-shop', current.key)).statusCode, 200, 'the previous key still works after a wrong shape')

  const added = issue('added-service', ['demo-shop'])
  replaceApiKeyFile(file, [current.entry, added.entry])
  await eventually(async () => (await withKey(app, 'demo-shop', added.key)).statusCode === 200, { what: 'the fixed file to be in force' })
  t.pass('the fixed file is in force')
  t.equal((await withKey(app, 'demo-shop', current.key)).statusCode, 200)
  t.notOk(logs.some((line) => line.includes(current.key) || line.includes(added.key)), 'the error lines hold no key')
})

t.test('the app refuses to build with a broken key file, or with a demo key outside the demo', async (t) => {
  const simulator = await startSimulator(t)

  await t.test('invalid JSON', async (t) => {
    const file = writeApiKeyFile(t, '{not json')
    const error = await buildFailure(testConfig(simulator, apiKeyEnv(file)))
    t.ok(error instanceof ApiKeyFileError, 'buildApp rejects with ApiKeyFileError')
    t.match((error as Error).message, 'is not JSON')
  })

  await t.test('valid JSON of the wrong shape', async (t) => {
    const file = writeApiKeyFile(t, '{"keys": []}')
    const error = await buildFailure(testConfig(simulator, apiKeyEnv(file)))
    t.ok(error instanceof ApiKeyFileError)
    t.match((error as Error).message, 'is not a list of')
  })

  await t.test('a missing file', async (t) => {
    const file = `${writeApiKeyFile(t, '[]')}.missing`
    const error = await buildFailure(testConfig(simulator, apiKeyEnv(file)))
    t.ok(error instanceof ApiKeyFileError)
    t.match((error as Error).message, 'cannot be read (ENOENT)')
  })

  const demoEntry: ApiKeyEntry = { id: 'demo', sha256: sha256Hex(DEMO_KEY_ALL_TENANTS), tenants: ALL_TENANTS, scopes: [Scopes.phonesRead] }

  await t.test('a demo key hash with NXCLOUD_ALLOW_DEMO_CREDENTIALS=false', async (t) => {
    const file = writeApiKeyFile(t, [demoEntry])
    const config = testConfig(simulator, {
      ...apiKeyEnv(file),
      NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'false',
      // Real-looking integrator credentials, so that only the key file stands in the way.
      NXCLOUD_ACCESS_KEY: 'integrator-access-key',
      NXCLOUD_ACCESS_SECRET: 'integrator-access-secret',
    })
    const error = await buildFailure(config)
    t.ok(error instanceof ApiKeyFileError, 'buildApp rejects with ApiKeyFileError')
    t.match((error as Error).message, 'demo key')
  })

  await t.test('a demo key hash with NXCLOUD_ALLOW_DEMO_CREDENTIALS=true', async (t) => {
    const file = writeApiKeyFile(t, [demoEntry])
    const { app } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true' }))
    t.equal((await withKey(app, 'demo-shop', DEMO_KEY_ALL_TENANTS)).statusCode, 200, 'the app builds and takes the demo key')
  })
})

t.test('a key reads only its tenants, on a cache MISS and on a cache HIT, and a denial touches neither cache nor NxCloud', async (t) => {
  const shop = issue('shop-only', ['demo-shop'])
  const all = issue('all-tenants', ALL_TENANTS)
  const { app, config, simulator, file } = await startHarness(t, [shop.entry, all.entry])
  const bankKeys = () => redisKeysMatching(`${config.CACHE_KEY_PREFIX}*demo-bank*`)

  const miss = await withKey(app, 'demo-bank', shop.key)
  assertProblem(t, miss, 'tenantNotAllowed')
  t.equal(simulator.calls, 0, 'NxCloud is not called for a denied tenant')
  t.strictSame(await bankKeys(), [], 'nothing about demo-bank was written to Redis')

  const filled = await withKey(app, 'demo-bank', all.key)
  t.equal(filled.statusCode, 200)
  t.equal(filled.headers['x-cache'], 'MISS')
  t.match(filled.body, DEMO_BANK_DATA, 'the pattern the denials are checked against does find demo-bank\'s list')
  t.equal(simulator.calls, 1)
  t.not((await bankKeys()).length, 0, 'the all-tenants key cached demo-bank (so the scan above could have found it)')

  const hit = await withKey(app, 'demo-bank', shop.key)
  assertProblem(t, hit, 'tenantNotAllowed')
  assertNoPhoneData(t, hit)
  t.equal(simulator.calls, 1)

  // A second instance on the same Redis has demo-bank only in the shared cache: the Redis HIT path.
  const other = await buildTestApp(t, testConfig(simulator, {
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_MAX: GENEROUS_RATE_LIMIT,
    CACHE_KEY_PREFIX: config.CACHE_KEY_PREFIX,
    ...apiKeyEnv(file),
  }))
  const sharedHit = await withKey(other.app, 'demo-bank', shop.key)
  assertProblem(t, sharedHit, 'tenantNotAllowed')
  assertNoPhoneData(t, sharedHit)
  const allowed = await withKey(other.app, 'demo-bank', all.key)
  t.equal(allowed.statusCode, 200)
  t.equal(allowed.headers['x-cache'], 'HIT', 'the shared cache did hold demo-bank')
  t.equal(simulator.calls, 1, 'no instance called NxCloud again')

  t.equal((await withKey(app, 'demo-shop', shop.key)).statusCode, 200, 'the shop key still reads its own tenant')
})

t.test('a key without phones:read is 403 insufficient-scope', async (t) => {
  const refresher = issue('refresher', ALL_TENANTS, [Scopes.cacheRefresh])
  const { app, simulator } = await startHarness(t, [refresher.entry])
  const response = await withKey(app, 'demo-shop', refresher.key)
  assertProblem(t, response, 'insufficientScope')
  t.match(response.json<{ detail: string }>().detail, 'phones:read')
  t.equal(response.headers['www-authenticate'], undefined, 'no bearer challenge for an API key caller')
  t.equal(simulator.calls, 0)
})

t.test('authentication comes before validation, and the tenant too: nothing is learnt about a tenant without access', async (t) => {
  const shop = issue('svc', ['demo-shop'])
  const everyTenant = issue('ops', '*')
  const { app, simulator } = await startHarness(t, [shop.entry, everyTenant.entry])
  const anonymous = await app.inject('/tenants/bad!key/phones')
  assertProblem(t, anonymous, 'unauthenticated')
  const notMine = await app.inject({ url: '/tenants/bad!key/phones', headers: { 'x-api-key': shop.key } })
  assertProblem(t, notMine, 'tenantNotAllowed')
  const malformed = await app.inject({ url: '/tenants/bad!key/phones', headers: { 'x-api-key': everyTenant.key } })
  assertProblem(t, malformed, 'invalidRequest')
  t.equal(simulator.calls, 0)
})

t.test('answers carry nosniff; a list varies on both credentials headers', async (t) => {
  const shop = issue('svc', ['demo-shop'])
  const { app } = await startHarness(t, [shop.entry])
  const answers: Array<[string, LightMyRequestResponse, number]> = [
    ['a list', await withKey(app, 'demo-shop', shop.key), 200],
    ['no credentials', await app.inject(phonesUrl('demo-shop')), 401],
    ['another tenant', await withKey(app, 'demo-bank', shop.key), 403],
    ['an unknown route', await app.inject('/no/such/route'), 404],
    ['liveness', await app.inject('/healthz'), 200],
  ]
  for (const [name, response, status] of answers) {
    t.equal(response.statusCode, status, name)
    t.equal(response.headers['x-content-type-options'], 'nosniff', `${name} carries nosniff`)
  }
  const vary = String(answers[0]?.[1].headers['vary']).toLowerCase().split(',').map((name) => name.trim())
  t.ok(vary.includes('authorization'), 'vary names authorization')
  t.ok(vary.includes('x-api-key'), 'vary names x-api-key')
})

t.test('a CORS preflight over a real socket allows both credentials headers', async (t) => {
  const { app } = await startHarness(t, [issue('svc', ['demo-shop']).entry], { CORS_ORIGINS: 'https://app.example.com' })
  const client = await listening(t, app)
  const response = await client.request({
    method: 'OPTIONS',
    path: phonesUrl('demo-shop'),
    headers: {
      origin: 'https://app.example.com',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'x-api-key,authorization',
    },
  })
  await response.body.dump()
  t.ok(response.statusCode === 204 || response.statusCode === 200, `the preflight succeeds (got ${response.statusCode})`)
  t.equal(response.headers['access-control-allow-origin'], 'https://app.example.com')
  const allowed = String(response.headers['access-control-allow-headers']).toLowerCase().split(',').map((name) => name.trim())
  t.ok(allowed.includes('x-api-key'), 'x-api-key is allowed')
  t.ok(allowed.includes('authorization'), 'authorization is allowed')
})

t.test('/healthz, /readyz and /openapi.json need no credentials', async (t) => {
  const { app } = await startHarness(t, [issue('svc', ['demo-shop']).entry])
  for (const url of ['/healthz', '/readyz', '/openapi.json']) {
    t.equal((await app.inject(url)).statusCode, 200, url)
  }
})

t.test('over a real socket a valid key is 200 and a missing key is 401', async (t) => {
  const shop = issue('svc', ['demo-shop'])
  const { app, simulator } = await startHarness(t, [shop.entry])
  const client = await listening(t, app)

  const ok = await client.request({ method: 'GET', path: phonesUrl('demo-shop'), headers: { 'x-api-key': shop.key } })
  t.equal(ok.statusCode, 200)
  t.equal((await ok.body.json() as { appkey: string }).appkey, 'demo-shop')

  const missing = await client.request({ method: 'GET', path: phonesUrl('demo-shop') })
  t.equal(missing.statusCode, 401)
  t.match(missing.headers['content-type'], PROBLEM_CONTENT_TYPE)
  t.match(missing.headers['www-authenticate'], 'ApiKey realm="nxcloud-bff"')
  t.equal((await missing.body.json() as { type: string }).type, ProblemTypes.unauthenticated.type)
  t.equal(simulator.calls, 1, 'only the authenticated request reached NxCloud')
})
