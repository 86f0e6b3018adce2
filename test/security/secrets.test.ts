import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { ConfigError, loadConfig } from '../../src/config.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL, type TestApp } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'

const SHORT_TIMEOUT_MS = '200'

interface Driven {
  name: string
  response: LightMyRequestResponse
}

async function appWithSecret (t: Test, simulator: NxCloudSimulator, secret: string, env: Record<string, string> = {}): Promise<TestApp> {
  // trace: the most the service ever logs, so the assertion covers every line it could write.
  return buildTestApp(t, testConfig(simulator, {
    REDIS_URL: TEST_REDIS_URL,
    NXCLOUD_ACCESS_SECRET: secret,
    LOG_LEVEL: 'trace',
    // Every failure kind is driven through one app: the breaker must not turn the later ones into 503s.
    NXCLOUD_BREAKER_MIN_CALLS: '1000',
    ...env,
  }))
}

async function drive (
  t: Test,
  app: TestApp['app'],
  url: string,
  expectedStatus: number,
  driven: Driven[]
): Promise<LightMyRequestResponse> {
  const response = await app.inject({ url, headers: { 'x-request-id': `secrets-${driven.length}` } })
  t.equal(response.statusCode, expectedStatus, `${url} answers ${expectedStatus}`)
  driven.push({ name: url, response })
  return response
}

t.test('the secret appears in no response and no log line, whatever the outcome', async (t) => {
  const secret = `s3cr3t-${randomUUID()}`
  const wrongSecret = `s3cr3t-wrong-${randomUUID()}`
  const simulator = await startSimulator(t, { accessSecret: secret })
  const main = await appWithSecret(t, simulator, secret)
  const wrongCredentials = await appWithSecret(t, simulator, wrongSecret)
  const impatient = await appWithSecret(t, simulator, secret, { NXCLOUD_TIMEOUT_MS: SHORT_TIMEOUT_MS })
  const limited = await appWithSecret(t, simulator, secret, { RATE_LIMIT_MAX: '1' })
  const driven: Driven[] = []

  await drive(t, main.app, phonesUrl('demo-shop'), 200, driven)
  await drive(t, main.app, phonesUrl('demo-shop'), 200, driven)
  await drive(t, main.app, phonesUrl('demo-bank'), 200, driven)
  await drive(t, main.app, phonesUrl('demo-empty'), 200, driven)
  await drive(t, main.app, phonesUrl('no-such-app'), 404, driven)
  await drive(t, main.app, phonesUrl('demo-other'), 403, driven)
  await drive(t, main.app, phonesUrl('sim-code-9000'), 400, driven)
  await drive(t, main.app, phonesUrl('sim-code-1003'), 502, driven)
  await drive(t, main.app, phonesUrl('sim-code-9001'), 502, driven)
  await drive(t, main.app, phonesUrl('sim-http-500'), 502, driven)
  await drive(t, main.app, phonesUrl('sim-bad-json'), 502, driven)
  await drive(t, main.app, phonesUrl('sim-bad-record'), 502, driven)
  await drive(t, main.app, phonesUrl('sim-reset'), 502, driven)
  await drive(t, main.app, phonesUrl('a.b'), 400, driven)
  await drive(t, main.app, '/no/such/route', 404, driven)
  await drive(t, main.app, '/openapi.json', 200, driven)
  await drive(t, main.app, '/readyz', 200, driven)
  await drive(t, main.app, '/healthz', 200, driven)
  const rejected = await drive(t, wrongCredentials.app, phonesUrl('demo-shop'), 502, driven)
  await drive(t, impatient.app, phonesUrl('sim-slow-2000'), 504, driven)
  await drive(t, limited.app, phonesUrl('demo-shop'), 200, driven)
  await drive(t, limited.app, phonesUrl('demo-shop'), 429, driven)

  t.equal(rejected.json<{ upstreamCode?: number }>().upstreamCode, 1003,
    'the app with the wrong secret was really rejected by the signature check')

  t.ok(simulator.receivedSigns.length >= 10, 'the simulator recorded the signs it received')
  const needles = [secret, wrongSecret, ...new Set(simulator.receivedSigns)]

  for (const { name, response } of driven) {
    const headers = JSON.stringify(response.headers)
    const leaked = needles.filter((needle) => response.body.includes(needle) || headers.includes(needle))
    t.strictSame(leaked, [], `${name} (${response.statusCode}) leaks no secret or sign`)
  }

  const logs = [...main.logs, ...wrongCredentials.logs, ...impatient.logs, ...limited.logs]
  t.ok(logs.length >= driven.length, 'every request wrote log lines')
  const leakingLines = logs.filter((line) => needles.some((needle) => line.includes(needle)))
  t.strictSame(leakingLines, [], 'no log line carries a secret or a sign')
})

t.test('a configuration error does not repeat the secret it was given', async (t) => {
  const secret = `s3cr3t-${randomUUID()}`
  let thrown: unknown
  try {
    loadConfig({ NXCLOUD_ACCESS_KEY: 'some-key', NXCLOUD_ACCESS_SECRET: secret, NXCLOUD_TIMEOUT_MS: 'abc' })
  } catch (error) {
    thrown = error
  }
  if (!(thrown instanceof ConfigError)) throw new Error('loadConfig did not throw a ConfigError')
  t.match(thrown.message, /NXCLOUD_TIMEOUT_MS/, 'the offending variable is named')
  t.notOk(thrown.message.includes(secret), 'the message lacks the secret')
  t.notOk(thrown.problems.some((problem) => problem.includes(secret)), 'no listed problem carries the secret')
  t.notOk(String(thrown.stack).includes(secret), 'the stack lacks the secret')
})
