import { createHash } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { Agent, Client, request } from 'undici'
import type { Dispatcher } from 'undici'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, DEMO_TENANTS, generatedTenantAppkey } from './demo-tenants.js'
import { startNxCloudSimulator } from './nxcloud-simulator.js'
import type { NxCloudSimulator } from './nxcloud-simulator.js'

const PHONE_LIST_PATH = '/api/wa/integrator/embedded/register/phoneList'
const STALE_AGE_MS = 70_000
const SLOW_DELAY_MS = 150
const CLIENT_GIVE_UP_MS = 30
const FIXED_LATENCY_MS = 120
// Node may fire a timer up to a millisecond before its due time (its clock counts whole milliseconds).
const TIMER_EARLINESS_MS = 5

interface SignInput {
  accessKey: string
  action: string
  bizType: string
  ts: string
  body: string
  secret: string
  algorithm?: 'md5' | 'sha256'
}

// Independent of the simulator on purpose: the test proves the simulator agrees with the docs.
function signNxCloud ({ accessKey, action, bizType, ts, body, secret, algorithm = 'md5' }: SignInput): string {
  const bodyPart = body === '' ? '' : `&body=${body}`
  const text = `accessKey=${accessKey}&action=${action}&bizType=${bizType}&ts=${ts}${bodyPart}&accessSecret=${secret}`
  return createHash(algorithm).update(text, 'utf8').digest('hex')
}

interface PhoneListCall {
  appkey?: string
  body?: string            // exact bytes to send; defaults to {"appkey":...}
  signedBody?: string      // what to sign when it must differ from what is sent
  accessKey?: string
  secret?: string
  action?: string
  bizType?: string
  ts?: string
  algorithm?: string
  contentType?: string
  omitHeader?: string
  path?: string
  method?: Dispatcher.HttpMethod
  signal?: AbortSignal
}

interface Answer {
  status: number
  contentType: string | undefined
  text: string
  json: () => { code: unknown, message: unknown, data: unknown }
}

const agent = new Agent()
t.teardown(() => agent.close())

async function startDemoSimulator (clockSkewMs?: number): Promise<NxCloudSimulator> {
  const simulator = await startNxCloudSimulator({
    accessKey: DEMO_ACCESS_KEY,
    accessSecret: DEMO_ACCESS_SECRET,
    ...(clockSkewMs === undefined ? {} : { clockSkewMs }),
  })
  t.teardown(() => simulator.close())
  return simulator
}

function buildHeaders (call: PhoneListCall, sentBody: string): Record<string, string> {
  const signInput: SignInput = {
    accessKey: call.accessKey ?? DEMO_ACCESS_KEY,
    action: call.action ?? 'phoneList',
    bizType: call.bizType ?? '2',
    ts: call.ts ?? String(Date.now()),
    body: call.signedBody ?? sentBody,
    secret: call.secret ?? DEMO_ACCESS_SECRET,
  }
  if (call.algorithm === 'sha256') signInput.algorithm = 'sha256'
  const headers: Record<string, string> = {
    'content-type': call.contentType ?? 'application/json',
    accessKey: signInput.accessKey,
    ts: signInput.ts,
    bizType: signInput.bizType,
    action: signInput.action,
    sign: signNxCloud(signInput),
  }
  if (call.algorithm !== undefined) headers.algorithm = call.algorithm
  if (call.omitHeader !== undefined) Reflect.deleteProperty(headers, call.omitHeader)
  return headers
}

async function callPhoneList (simulator: NxCloudSimulator, call: PhoneListCall, dispatcher: Dispatcher = agent): Promise<Answer> {
  const body = call.body ?? JSON.stringify({ appkey: call.appkey ?? 'demo-shop' })
  const response = await request(`${simulator.url}${call.path ?? PHONE_LIST_PATH}`, {
    dispatcher,
    method: call.method ?? 'POST',
    headers: buildHeaders(call, body),
    body,
    ...(call.signal === undefined ? {} : { signal: call.signal }),
  })
  const text = await response.body.text()
  const contentType = response.headers['content-type']
  return {
    status: response.statusCode,
    contentType: Array.isArray(contentType) ? contentType[0] : contentType,
    text,
    json: () => JSON.parse(text),
  }
}

async function codeOf (t: Test, simulator: NxCloudSimulator, call: PhoneListCall): Promise<unknown> {
  const answer = await callPhoneList(simulator, call)
  t.equal(answer.status, 200, 'authentication outcomes are HTTP 200')
  return answer.json().code
}

t.test('the md5 helper reproduces the documented known-answer vectors', async (t) => {
  const vector = { accessKey: 'fme2na3kdi3ki', action: 'send', bizType: '1', ts: '1655710885431', secret: 'abciiiko2k3' }
  t.equal(signNxCloud({ ...vector, body: '{"name":"牛小信","id":10001}' }), '87c3560d3331ae23f1021e2025722354')
  t.equal(signNxCloud({ ...vector, body: '{"id":10001,"name":"牛小信"}' }), '7750759da06333f20d0640be09355e34')
  t.equal(signNxCloud({ ...vector, body: '{"id": 10001, "name": "牛小信"}' }), 'd0c24a9886c629330d7f3f2056c65bc2')
})

t.test('answers a correctly signed demo-shop request with its two phones', async (t) => {
  const simulator = await startDemoSimulator()
  const answer = await callPhoneList(simulator, { appkey: 'demo-shop' })
  t.equal(answer.status, 200)
  t.equal(answer.contentType, 'application/json; charset=utf-8')
  const envelope = answer.json()
  t.equal(envelope.code, 0)
  t.equal(envelope.message, 'Request successful')
  t.same(envelope.data, DEMO_TENANTS['demo-shop']?.phones)
  t.equal((envelope.data as unknown[]).length, 2)
})

t.test('accepts sha256 signatures and a charset suffix on the content type', async (t) => {
  const simulator = await startDemoSimulator()
  t.equal(await codeOf(t, simulator, { algorithm: 'sha256' }), 0)
  t.equal(await codeOf(t, simulator, { algorithm: 'md5' }), 0)
  t.equal(await codeOf(t, simulator, { contentType: 'application/json; charset=utf-8' }), 0)
})

t.test('passes undocumented enum values through and answers data null for demo-empty', async (t) => {
  const simulator = await startDemoSimulator()
  const bank = (await callPhoneList(simulator, { appkey: 'demo-bank' })).json()
  t.equal(bank.code, 0)
  t.match(bank.data, [{ status: 'ONBOARDING', name_status: 'PENDING_APPROVAL' }])
  const empty = (await callPhoneList(simulator, { appkey: 'demo-empty' })).json()
  t.same(empty, { code: 0, message: 'Request successful', data: null })
})

t.test('verifies requests in NxCloud order with NxCloud codes', async (t) => {
  const simulator = await startDemoSimulator()
  const staleTs = String(Date.now() - STALE_AGE_MS)
  const cases: Array<[string, PhoneListCall, number]> = [
    ['missing sign header', { omitHeader: 'sign' }, 1001],
    ['missing ts header', { omitHeader: 'ts' }, 1001],
    ['missing accessKey header', { omitHeader: 'accessKey' }, 1001],
    ['wrong action', { action: 'send' }, 1002],
    ['wrong bizType', { bizType: '1' }, 1002],
    ['unknown algorithm', { algorithm: 'sha1' }, 1002],
    ['stale ts (70 s old)', { ts: staleTs }, 1004],
    ['ts from the future', { ts: String(Date.now() + STALE_AGE_MS) }, 1004],
    ['ts in seconds-with-fraction form', { ts: String(Date.now() / 1000) }, 1004],
    ['wrong accessKey', { accessKey: 'someone-else' }, 1005],
    ['wrong secret', { secret: 'wrong-secret' }, 1003],
    ['wrong content type', { contentType: 'text/plain' }, 1003],
    ['signed body differs from sent body', { body: '{"appkey":"demo-shop"}', signedBody: '{"appkey": "demo-shop"}' }, 1003],
    ['body is not JSON', { body: 'appkey=demo-shop' }, 9000],
    ['body is empty', { body: '' }, 9000],
    ['body is a JSON array', { body: '["demo-shop"]' }, 9000],
    ['appkey missing', { body: '{}' }, 9000],
    ['appkey empty', { appkey: '' }, 9000],
    ['unknown appkey', { appkey: 'no-such-app' }, 9008],
    ['appkey of another customer', { appkey: 'demo-other' }, 9010],
  ]
  for (const [name, call, expectedCode] of cases) {
    t.equal(await codeOf(t, simulator, call), expectedCode, name)
  }
  const otherCustomer = (await callPhoneList(simulator, { appkey: 'demo-other' })).json()
  t.same(otherCustomer, {
    code: 9010,
    message: 'The customer information of the authentication mechanism is inconsistent with the APPKEY customer information',
    data: null,
  })
  t.same((await callPhoneList(simulator, { appkey: 'no-such-app' })).json(),
    { code: 9008, message: 'APPKEY does not exist', data: null })
})

t.test('checks ts against its own clock shifted by clockSkewMs', async (t) => {
  const simulator = await startDemoSimulator(STALE_AGE_MS)
  t.equal(await codeOf(t, simulator, {}), 1004, 'a fresh client ts is 70 s behind the skewed clock')
  t.equal(await codeOf(t, simulator, { ts: String(Date.now() + STALE_AGE_MS) }), 0)
})

t.test('answers 404 with a JSON envelope for other paths and methods', async (t) => {
  const simulator = await startDemoSimulator()
  const wrongPath = await callPhoneList(simulator, { path: '/api/wa/integrator/embedded/register/phoneList/' })
  t.equal(wrongPath.status, 404)
  t.equal(wrongPath.json().code, -1)
  const wrongMethod = await callPhoneList(simulator, { method: 'PUT' })
  t.equal(wrongMethod.status, 404)
  t.equal(wrongMethod.json().code, -1)
  t.equal(simulator.calls, 0, 'only phoneList requests are counted')
})

t.test('counts calls, records signs and headers, and resets', async (t) => {
  const simulator = await startDemoSimulator()
  await callPhoneList(simulator, {})
  await callPhoneList(simulator, { secret: 'wrong-secret' })
  await callPhoneList(simulator, { omitHeader: 'bizType' })
  t.equal(simulator.calls, 3, 'every outcome is counted')
  t.equal(simulator.receivedSigns.length, 3)
  t.match(simulator.receivedSigns, [/^[0-9a-f]{32}$/, /^[0-9a-f]{32}$/, /^[0-9a-f]{32}$/])
  t.equal(simulator.lastHeaders?.biztype, undefined)
  t.equal(simulator.lastHeaders?.accesskey, DEMO_ACCESS_KEY)
  simulator.resetCalls()
  t.equal(simulator.calls, 0)
  t.same(simulator.receivedSigns, [])
})

t.test('never sends the secret back', async (t) => {
  const simulator = await startDemoSimulator()
  const answers = await Promise.all(['demo-shop', 'no-such-app', 'sim-code-9001'].map((appkey) => callPhoneList(simulator, { appkey })))
  for (const answer of answers) t.notMatch(answer.text, DEMO_ACCESS_SECRET)
})

t.test('fault-injection appkeys', async (t) => {
  const simulator = await startDemoSimulator()

  t.test('sim-code-<n> answers that code', async (t) => {
    for (const code of [-1, 9001, 1003, 9007]) {
      const answer = await callPhoneList(simulator, { appkey: `sim-code-${code}` })
      t.equal(answer.status, 200)
      t.same(answer.json(), { code, message: 'simulated', data: null }, `code ${code}`)
    }
  })

  t.test('sim-http-<status> answers that HTTP status', async (t) => {
    for (const status of [429, 500, 502, 503]) {
      const answer = await callPhoneList(simulator, { appkey: `sim-http-${status}` })
      t.equal(answer.status, status)
      t.same(JSON.parse(answer.text), { error: 'simulated' })
    }
  })

  t.test('sim-bad-json answers truncated JSON', async (t) => {
    const answer = await callPhoneList(simulator, { appkey: 'sim-bad-json' })
    t.equal(answer.status, 200)
    t.equal(answer.contentType, 'application/json; charset=utf-8')
    t.equal(answer.text, '{"code":0,"data":[')
    t.throws(() => answer.json())
  })

  t.test('sim-bad-shape answers the wrong envelope shape', async (t) => {
    const answer = await callPhoneList(simulator, { appkey: 'sim-bad-shape' })
    t.same(answer.json(), { code: 'zero', data: {} })
  })

  t.test('sim-bad-record answers a record of the wrong type', async (t) => {
    const envelope = (await callPhoneList(simulator, { appkey: 'sim-bad-record' })).json()
    t.equal(envelope.code, 0)
    t.same(envelope.data, [{ display_phone_number: 42 }])
  })

  t.test('sim-reset drops the connection without answering', async (t) => {
    await t.rejects(callPhoneList(simulator, { appkey: 'sim-reset' }))
  })

  t.test('sim-slow-<ms> answers demo-shop after the delay', async (t) => {
    const startedAt = Date.now()
    const envelope = (await callPhoneList(simulator, { appkey: `sim-slow-${SLOW_DELAY_MS}` })).json()
    t.ok(Date.now() - startedAt >= SLOW_DELAY_MS - 5, 'waited')
    t.equal(envelope.code, 0)
    t.same(envelope.data, DEMO_TENANTS['demo-shop']?.phones)
  })

  t.test('sim-slow-<ms> copes with a client that gave up', async (t) => {
    await t.rejects(callPhoneList(simulator, {
      appkey: `sim-slow-${SLOW_DELAY_MS}`,
      signal: AbortSignal.timeout(CLIENT_GIVE_UP_MS),
    }))
    await new Promise((resolve) => setTimeout(resolve, SLOW_DELAY_MS))
    t.equal(await codeOf(t, simulator, {}), 0, 'still serving')
  })

  t.test('fault appkeys still require a valid signature', async (t) => {
    t.equal(await codeOf(t, simulator, { appkey: 'sim-http-500', secret: 'wrong-secret' }), 1003)
  })

  t.test('malformed fault appkeys are unknown appkeys', async (t) => {
    for (const appkey of ['sim-code-', 'sim-code-abc', 'sim-http-99', 'sim-http-600', 'sim-slow-x']) {
      t.equal(await codeOf(t, simulator, { appkey }), 9008, appkey)
    }
  })
})

t.test('bench-tenant-<n> appkeys are tenants of their own with two generated phones', async (t) => {
  const simulator = await startDemoSimulator()
  const first = (await callPhoneList(simulator, { appkey: generatedTenantAppkey(42) })).json()
  const second = (await callPhoneList(simulator, { appkey: generatedTenantAppkey(43) })).json()
  t.equal(first.code, 0)
  t.match(first.data, [
    { display_phone_number: '+1 555 000000042', verified_name: 'Bench Tenant 42', waba_name: 'BENCH TENANT 42' },
    { display_phone_number: '+44 20 000000042' },
  ])
  t.same(second.data, JSON.parse(JSON.stringify(first.data).replaceAll('42', '43')), 'each tenant its own list')
  t.equal(await codeOf(t, simulator, { appkey: generatedTenantAppkey(42), secret: 'wrong-secret' }), 1003, 'still signed')
  for (const appkey of ['bench-tenant-', 'bench-tenant-x', 'bench-tenant-1234567890', 'bench-tenant-1-']) {
    t.equal(await codeOf(t, simulator, { appkey }), 9008, `${appkey} is unknown`)
  }
})

t.test('latencyMs delays every phoneList answer, success or refusal', async (t) => {
  const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET, latencyMs: FIXED_LATENCY_MS })
  t.teardown(() => simulator.close())
  for (const call of [{}, { appkey: 'no-such-app' }, { secret: 'wrong-secret' }]) {
    const startedAt = Date.now()
    const code = await codeOf(t, simulator, call)
    t.ok(Date.now() - startedAt >= FIXED_LATENCY_MS - TIMER_EARLINESS_MS, `code ${String(code)} waited`)
  }
})

t.test('keeps connections alive across outcomes', async (t) => {
  const simulator = await startDemoSimulator()
  const client = new Client(simulator.url)
  t.teardown(() => client.close())
  let connects = 0
  client.on('connect', () => { connects++ })
  for (const call of [{}, { secret: 'wrong-secret' }, { appkey: 'no-such-app' }, { appkey: 'sim-code-9001' }, {}]) {
    await callPhoneList(simulator, call, client)
  }
  await callPhoneList(simulator, { path: '/elsewhere' }, client)
  await callPhoneList(simulator, {}, client)
  t.equal(connects, 1, 'one socket served every request')
})

t.test('close() resolves while a keep-alive socket is open', async (t) => {
  const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET })
  const client = new Client(simulator.url)
  t.teardown(() => client.destroy())
  await callPhoneList(simulator, {}, client)
  const pendingSlow = callPhoneList(simulator, { appkey: `sim-slow-${SLOW_DELAY_MS * 100}` }, client).catch((error: unknown) => error)
  await new Promise((resolve) => setTimeout(resolve, CLIENT_GIVE_UP_MS))
  await simulator.close()
  t.ok(await pendingSlow instanceof Error, 'the in-flight request fails instead of hanging')
  await simulator.close()
  t.pass('close() is idempotent')
})
