import { createHash } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL, type TestApp } from '../helper.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { logLineWith } from '../support/log-lines.js'

const PHONE_KEYS = [
  'displayPhoneNumber', 'verifiedName', 'qualityRating', 'nameStatus', 'codeVerificationStatus',
  'registerStatus', 'status', 'currentLimit', 'wabaId', 'wabaName',
]
// Our own ids: 64 random bits per process (base64url), then a per-process counter in base 36.
const GENERATED_REQUEST_ID = /^[A-Za-z0-9_-]{11}-[0-9a-z]+$/
const EPOCH_MILLISECONDS = /^\d{13}$/
const MD5_HEX = /^[0-9a-f]{32}$/
const TOO_LONG_REQUEST_ID_LENGTH = 200

interface Harness extends TestApp {
  simulator: NxCloudSimulator
}

interface PhoneListBody {
  appkey: string
  phones: Array<Record<string, unknown>>
  fetchedAt: string
}

async function startHarness (t: Test): Promise<Harness> {
  const simulator = await startSimulator(t)
  const testApp = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL }))
  return { ...testApp, simulator }
}

// Written out here, not imported from src: the test proves src agrees with the documented convention.
function expectedSign (ts: string, body: string): string {
  const text = `accessKey=${DEMO_ACCESS_KEY}&action=phoneList&bizType=2&ts=${ts}&body=${body}&accessSecret=${DEMO_ACCESS_SECRET}`
  return createHash('md5').update(text, 'utf8').digest('hex')
}

t.test('demo-shop answers its phones in camelCase, with upstream quirks normalised', async (t) => {
  const { app } = await startHarness(t)
  const before = Date.now()
  const response = await app.inject(phonesUrl('demo-shop'))
  const after = Date.now()

  t.equal(response.statusCode, 200)
  const body = response.json<PhoneListBody>()
  t.same(Object.keys(body).sort(), ['appkey', 'fetchedAt', 'phones'], 'exactly appkey, phones and fetchedAt')
  t.equal(body.appkey, 'demo-shop')
  t.equal(body.phones.length, 2)
  for (const phone of body.phones) {
    t.same(Object.keys(phone).sort(), [...PHONE_KEYS].sort(), 'exactly the ten camelCase fields')
  }
  t.strictSame(body.phones, [
    {
      displayPhoneNumber: '+86 138 0000 0024',
      verifiedName: '牛小信 Shop',
      qualityRating: 'UNKNOWN',
      nameStatus: 'APPROVED',
      codeVerificationStatus: 'VERIFIED',
      registerStatus: 1,
      status: 'CONNECTED',
      currentLimit: null,
      wabaId: '116960000086404',
      wabaName: 'DEMO SHOP',
    },
    {
      displayPhoneNumber: '+1 555 000 0099',
      verifiedName: 'Demo Shop HK',
      qualityRating: 'GREEN',
      nameStatus: 'APPROVED',
      codeVerificationStatus: 'NOT_VERIFIED',
      registerStatus: 5,
      status: 'CONNECTED',
      currentLimit: 'TIER_1K',
      wabaId: '116960000086404',
      wabaName: 'DEMO SHOP',
    },
  ], 'UNKNOW becomes UNKNOWN, an empty limit becomes null, TIER_1K and the non-ASCII name are kept')

  const fetchedAt = Date.parse(body.fetchedAt)
  t.equal(new Date(fetchedAt).toISOString(), body.fetchedAt, 'fetchedAt is an ISO 8601 date')
  t.ok(fetchedAt >= before && fetchedAt <= after, 'fetchedAt is the moment of this call')
})

t.test('a first answer carries MISS, a private max-age of the TTL with the stale windows, Age 0 and a JSON content type', async (t) => {
  const { app } = await startHarness(t)
  const response = await app.inject(phonesUrl('demo-shop'))
  t.equal(response.statusCode, 200)
  t.equal(response.headers['x-cache'], 'MISS')
  t.equal(response.headers['cache-control'], 'private, max-age=300, stale-while-revalidate=60, stale-if-error=86400')
  t.equal(response.headers['age'], '0')
  t.match(response.headers['content-type'], /^application\/json(;|$)/)
})

t.test('demo-bank\'s enum values outside the known lists pass through unchanged', async (t) => {
  const { app } = await startHarness(t)
  const response = await app.inject(phonesUrl('demo-bank'))
  t.equal(response.statusCode, 200)
  t.strictSame(response.json<PhoneListBody>().phones, [{
    displayPhoneNumber: '+44 20 7946 0018',
    verifiedName: 'Demo Bank',
    qualityRating: 'YELLOW',
    nameStatus: 'PENDING_APPROVAL',
    codeVerificationStatus: 'VERIFIED',
    registerStatus: 3,
    status: 'ONBOARDING',
    currentLimit: 'TIER_10K',
    wabaId: '204410000007001',
    wabaName: 'DEMO BANK',
  }])
})

t.test('demo-empty (code 0 with data null) answers 200 with no phones', async (t) => {
  const { app } = await startHarness(t)
  const response = await app.inject(phonesUrl('demo-empty'))
  t.equal(response.statusCode, 200)
  const body = response.json<PhoneListBody>()
  t.equal(body.appkey, 'demo-empty')
  t.strictSame(body.phones, [])
  t.type(body.fetchedAt, 'string')
})

t.test('a well-formed caller X-Request-Id is echoed and labels the request\'s log line', async (t) => {
  const { app, logs } = await startHarness(t)
  const response = await app.inject({ url: phonesUrl('demo-shop'), headers: { 'x-request-id': 'abc-123' } })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['x-request-id'], 'abc-123')
  t.ok(logLineWith(logs, (line) => line.requestId === 'abc-123' && line.msg === 'request completed'))
})

t.test('a malformed caller X-Request-Id is replaced by a generated id, unique per request', async (t) => {
  const seen = new Set<string>()
  const malformed: Array<[string, string]> = [
    ['200 characters', 'a'.repeat(TOO_LONG_REQUEST_ID_LENGTH)],
    ['markup', '<script>'],
    ['spaces', 'has some spaces'],
  ]
  for (const [name, given] of malformed) {
    await t.test(name, async (t) => {
      const { app } = await startHarness(t)
      const response = await app.inject({ url: phonesUrl('demo-shop'), headers: { 'x-request-id': given } })
      t.equal(response.statusCode, 200)
      const echoed = String(response.headers['x-request-id'])
      t.not(echoed, given)
      t.match(echoed, GENERATED_REQUEST_ID)
      t.notOk(seen.has(echoed), 'not the id of an earlier request')
      seen.add(echoed)
    })
  }
})

t.test('the upstream call carries the five signed headers and no secret', async (t) => {
  const { app, simulator } = await startHarness(t)
  const response = await app.inject(phonesUrl('demo-shop'))
  t.equal(response.statusCode, 200, 'the simulator verified the signature (it answered code 0)')
  t.equal(simulator.calls, 1)

  const headers = simulator.lastHeaders
  if (headers === undefined) throw new Error('the simulator received no request')
  t.equal(headers['accesskey'], DEMO_ACCESS_KEY)
  t.equal(headers['biztype'], '2')
  t.equal(headers['action'], 'phoneList')
  const ts = String(headers['ts'])
  t.match(ts, EPOCH_MILLISECONDS, 'ts is epoch milliseconds')
  t.match(headers['sign'], MD5_HEX)
  t.equal(headers['sign'], expectedSign(ts, '{"appkey":"demo-shop"}'), 'sign follows the documented convention')
  t.match(headers['content-type'], /^application\/json/)
  t.notOk(Object.hasOwn(headers, 'accesssecret'), 'the secret is never sent')
  t.strictSame(simulator.receivedSigns, [headers['sign']])
})
