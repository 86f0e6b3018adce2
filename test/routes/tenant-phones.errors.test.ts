import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { Problem } from '../../src/errors/problem-schema.js'
import { ProblemTypes, type ProblemKind } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL, type TestApp } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import type { SimulatorOptions } from '../simulator/nxcloud-simulator.js'
import { logLinesWith } from '../support/log-lines.js'

const PINO_ERROR_LEVEL = 50
const SHORT_TIMEOUT_MS = '200'
const SLOWER_THAN_TIMEOUT = 'sim-slow-2000'
// Far beyond the upstream's 60 s window: the simulator's clock runs two minutes ahead of ours.
const CLOCK_SKEW_MS = 120_000
const REPEATED_PROBE_CALLS = 5

type ProblemBody = Problem

interface ExpectedProblem {
  instance: string
  upstreamCode?: number
}

// The default of NXCLOUD_MAX_ATTEMPTS: transient failures are tried this often in all.
const MAX_ATTEMPTS = 3

interface Harness extends TestApp {
  simulator: NxCloudSimulator
}

async function startHarness (
  t: Test,
  env: Record<string, string> = {},
  simulatorOptions: Partial<SimulatorOptions> = {}
): Promise<Harness> {
  const simulator = await startSimulator(t, simulatorOptions)
  const testApp = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, ...env }))
  return { ...testApp, simulator }
}

/** Asserts an RFC 9457 answer of one kind from the problem table, and returns its body. */
function assertProblem (t: Test, response: LightMyRequestResponse, kind: ProblemKind, expected: ExpectedProblem): ProblemBody {
  const problem = ProblemTypes[kind]
  t.equal(response.statusCode, problem.status, `HTTP ${problem.status}`)
  t.match(response.headers['content-type'], /^application\/problem\+json(;|$)/, 'problem content type')
  const body = response.json<ProblemBody>()
  t.equal(body.type, problem.type, 'type')
  t.equal(body.title, problem.title, 'title')
  t.equal(body.status, problem.status, 'status field matches HTTP status')
  t.type(body.detail, 'string')
  t.ok(body.detail.length > 0, 'detail is not empty')
  t.equal(body.instance, expected.instance, 'instance is the request path')
  t.type(body.requestId, 'string')
  t.ok(body.requestId.length > 0, 'requestId is not empty')
  t.equal(body.requestId, response.headers['x-request-id'], 'requestId equals the X-Request-Id header')
  const expectedKeys = ['detail', 'instance', 'requestId', 'status', 'title', 'type']
  if (expected.upstreamCode === undefined) {
    t.notOk(Object.hasOwn(body, 'upstreamCode'), 'no upstreamCode when NxCloud answered no code')
  } else {
    t.equal(body.upstreamCode, expected.upstreamCode, 'upstreamCode')
    expectedKeys.push('upstreamCode')
  }
  t.same(Object.keys(body).sort(), expectedKeys.sort(), 'exactly the problem fields')
  return body
}

function assertErrorLoggedFor (t: Test, logs: string[], requestId: string): void {
  const errors = logLinesWith(logs, (line) => line.level === PINO_ERROR_LEVEL && line.requestId === requestId)
  t.ok(errors.length > 0, `an error-level (50) log line exists for request ${requestId}`)
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
  return port
}

t.test('NxCloud code 9008 (unknown appkey) answers 404 tenant-not-found with the upstream code', async (t) => {
  const { app, simulator } = await startHarness(t)
  const url = phonesUrl('no-such-app')
  assertProblem(t, await app.inject(url), 'tenantNotFound', { instance: url, upstreamCode: 9008 })
  t.equal(simulator.calls, 1)
})

t.test('NxCloud code 9010 (appkey of another customer) answers 403 tenant-forbidden', async (t) => {
  const { app } = await startHarness(t)
  const url = phonesUrl('demo-other')
  assertProblem(t, await app.inject(url), 'tenantForbidden', { instance: url, upstreamCode: 9010 })
})

t.test('NxCloud code 9000 answers 400 upstream-rejected-parameters', async (t) => {
  const { app } = await startHarness(t)
  const url = phonesUrl('sim-code-9000')
  assertProblem(t, await app.inject(url), 'upstreamRejectedParameters', { instance: url, upstreamCode: 9000 })
})

t.test('authentication-range codes answer 502 upstream-authentication and log an error line', async (t) => {
  for (const code of [1000, 1001, 1003, 1005, 1099, 9007]) {
    await t.test(`code ${code}`, async (t) => {
      const { app, logs } = await startHarness(t)
      const url = phonesUrl(`sim-code-${code}`)
      const body = assertProblem(t, await app.inject(url), 'upstreamAuthentication', { instance: url, upstreamCode: code })
      assertErrorLoggedFor(t, logs, body.requestId)
    })
  }
})

t.test('real authentication failures from the simulator answer 502 upstream-authentication', async (t) => {
  await t.test('a wrong NXCLOUD_ACCESS_SECRET is answered code 1003', async (t) => {
    const { app, logs } = await startHarness(t, { NXCLOUD_ACCESS_SECRET: 'not-the-secret-nxcloud-knows' })
    const url = phonesUrl('demo-shop')
    const body = assertProblem(t, await app.inject(url), 'upstreamAuthentication', { instance: url, upstreamCode: 1003 })
    assertErrorLoggedFor(t, logs, body.requestId)
  })

  await t.test('a wrong NXCLOUD_ACCESS_KEY is answered code 1005', async (t) => {
    const { app, logs } = await startHarness(t, { NXCLOUD_ACCESS_KEY: 'not-the-key-nxcloud-knows' })
    const url = phonesUrl('demo-shop')
    const body = assertProblem(t, await app.inject(url), 'upstreamAuthentication', { instance: url, upstreamCode: 1005 })
    assertErrorLoggedFor(t, logs, body.requestId)
  })

  await t.test('our clock two minutes off NxCloud\'s is answered code 1004', async (t) => {
    const { app, logs } = await startHarness(t, {}, { clockSkewMs: CLOCK_SKEW_MS })
    const url = phonesUrl('demo-shop')
    const body = assertProblem(t, await app.inject(url), 'upstreamAuthentication', { instance: url, upstreamCode: 1004 })
    assertErrorLoggedFor(t, logs, body.requestId)
  })
})

t.test('other NxCloud codes answer 502 upstream-error with the upstream code', async (t) => {
  for (const code of [-1, 9001, 4242]) {
    await t.test(`code ${code}`, async (t) => {
      const { app } = await startHarness(t)
      const url = phonesUrl(`sim-code-${code}`)
      assertProblem(t, await app.inject(url), 'upstreamError', { instance: url, upstreamCode: code })
    })
  }
})

t.test('answers that are not a phone list envelope answer 502 upstream-invalid-response without a code', async (t) => {
  const faults = ['sim-http-500', 'sim-http-503', 'sim-http-404', 'sim-bad-json', 'sim-bad-shape', 'sim-bad-record']
  for (const appkey of faults) {
    await t.test(appkey, async (t) => {
      const { app, simulator } = await startHarness(t)
      const url = phonesUrl(appkey)
      assertProblem(t, await app.inject(url), 'upstreamInvalidResponse', { instance: url })
      const retried = appkey.startsWith('sim-http-5')
      t.equal(simulator.calls, retried ? MAX_ATTEMPTS : 1, retried ? 'a 5xx is retried up to NXCLOUD_MAX_ATTEMPTS' : 'one call, not retried')
    })
  }
})

t.test('a connection NxCloud resets answers 502 upstream-unreachable', async (t) => {
  const { app, simulator } = await startHarness(t)
  const url = phonesUrl('sim-reset')
  assertProblem(t, await app.inject(url), 'upstreamUnreachable', { instance: url })
  t.equal(simulator.calls, MAX_ATTEMPTS, 'a reset socket is retried on a fresh connection up to NXCLOUD_MAX_ATTEMPTS, then given up')
})

t.test('a refused connection answers 502 upstream-unreachable', async (t) => {
  const port = await freePort()
  const { app, simulator } = await startHarness(t, { NXCLOUD_BASE_URL: `http://127.0.0.1:${port}` })
  const url = phonesUrl('demo-shop')
  assertProblem(t, await app.inject(url), 'upstreamUnreachable', { instance: url })
  t.equal(simulator.calls, 0, 'the simulator was never the target')
})

t.test('NxCloud slower than NXCLOUD_TIMEOUT_MS answers 504 upstream-timeout', async (t) => {
  const { app, simulator } = await startHarness(t, { NXCLOUD_TIMEOUT_MS: SHORT_TIMEOUT_MS })
  const url = phonesUrl(SLOWER_THAN_TIMEOUT)
  assertProblem(t, await app.inject(url), 'upstreamTimeout', { instance: url })
  t.equal(simulator.calls, 1)
})

t.test('a failure is not cached: the next call asks NxCloud again', async (t) => {
  const { app, simulator } = await startHarness(t, { NXCLOUD_MAX_ATTEMPTS: '1' })
  const url = phonesUrl('sim-code-9001')
  assertProblem(t, await app.inject(url), 'upstreamError', { instance: url, upstreamCode: 9001 })
  t.equal(simulator.calls, 1)
  assertProblem(t, await app.inject(url), 'upstreamError', { instance: url, upstreamCode: 9001 })
  t.equal(simulator.calls, 2, 'the second call reached NxCloud')
})

t.test('a malformed appkey answers 400 invalid-request and never reaches NxCloud', async (t) => {
  const malformed: Array<[string, string]> = [
    ['65 characters', 'a'.repeat(65)],
    ['a dot', 'a.b'],
    ['a space', 'a%20b'],
    ['an encoded slash', 'a%2Fb'],
    ['a non-ASCII letter', '%C3%A9'],
    ['empty', ''],
  ]
  for (const [name, appkey] of malformed) {
    await t.test(name, async (t) => {
      const { app, simulator } = await startHarness(t)
      const url = phonesUrl(appkey)
      assertProblem(t, await app.inject(url), 'invalidRequest', { instance: url })
      t.equal(simulator.calls, 0, 'NxCloud was not called')
    })
  }
})

t.test('a 64-character appkey of allowed characters is accepted and reaches NxCloud', async (t) => {
  const { app, simulator } = await startHarness(t)
  const appkey = `${'Az09_-'.repeat(10)}abcd`
  t.equal(appkey.length, 64)
  const url = phonesUrl(appkey)
  assertProblem(t, await app.inject(url), 'tenantNotFound', { instance: url, upstreamCode: 9008 })
  t.equal(simulator.calls, 1)
})

t.test('an unknown route answers 404 route-not-found', async (t) => {
  const { app, simulator } = await startHarness(t)
  assertProblem(t, await app.inject('/no/such/route?x=1'), 'routeNotFound', { instance: '/no/such/route' })
  assertProblem(t, await app.inject('/tenants/demo-shop'), 'routeNotFound', { instance: '/tenants/demo-shop' })
  t.equal(simulator.calls, 0)
})

t.test('past RATE_LIMIT_MAX a client gets 429 rate-limited, while the probes stay unlimited', async (t) => {
  const { app, simulator } = await startHarness(t, { RATE_LIMIT_MAX: '2' })
  const url = phonesUrl('demo-shop')
  t.equal((await app.inject(url)).statusCode, 200)
  t.equal((await app.inject(url)).statusCode, 200)
  const limited = await app.inject(url)
  assertProblem(t, limited, 'rateLimited', { instance: url })
  t.match(limited.headers['retry-after'], /^\d+$/, 'Retry-After is a number of seconds')
  t.equal(simulator.calls, 1, 'the limited call did not reach NxCloud (the second was a cache hit)')

  for (let call = 0; call < REPEATED_PROBE_CALLS; call++) {
    t.equal((await app.inject('/healthz')).statusCode, 200, `/healthz call ${call + 1}`)
    t.equal((await app.inject('/readyz')).statusCode, 200, `/readyz call ${call + 1}`)
  }
  assertProblem(t, await app.inject(url), 'rateLimited', { instance: url })
})
