import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { PROBLEM_CONTENT_TYPE } from '../../src/errors/problem-schema.js'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { TEST_REDIS_URL, buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'

const TENANT_URL = phonesUrl('demo-shop')
// Just past a 500 ms window, so the limiter has certainly started a new one.
const PAST_SHORT_WINDOW_MS = 600
const OTHER_CLIENTS = 10_000
// Nothing listens on port 9 (discard) on loopback: connections are refused at once.
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:9'

function fromClient (app: FastifyInstance, forwardedFor: string) {
  return app.inject({ url: TENANT_URL, headers: { 'x-forwarded-for': forwardedFor } })
}

function assertRateLimited (t: Test, response: LightMyRequestResponse, max: number, windowSeconds: number): void {
  t.equal(response.statusCode, 429)
  t.match(response.headers['content-type'], PROBLEM_CONTENT_TYPE)
  const problem = response.json()
  t.equal(problem.type, ProblemTypes.rateLimited.type)
  t.equal(problem.title, ProblemTypes.rateLimited.title)
  t.equal(problem.status, 429)
  t.equal(response.headers['x-ratelimit-limit'], String(max))
  const retryAfter = Number(response.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= windowSeconds,
    `retry-after is whole seconds within the window (got ${String(response.headers['retry-after'])})`)
}

t.test('in-process: past RATE_LIMIT_MAX a client gets 429 problem+json with retry-after, and NxCloud is not called', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { RATE_LIMIT_MAX: '3' }))

  for (let request = 1; request <= 3; request++) {
    const response = await app.inject(TENANT_URL)
    t.equal(response.statusCode, 200, `request ${request} is allowed`)
    t.equal(response.headers['x-ratelimit-limit'], '3')
    t.equal(response.headers['x-ratelimit-remaining'], String(3 - request))
  }
  assertRateLimited(t, await app.inject(TENANT_URL), 3, 60)
  t.equal(simulator.calls, 1, 'one MISS, two HITs, and the limited request never reached the service')
})

t.test('with Redis the count is shared: two requests on each of two instances exhaust a limit of 3', async (t) => {
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_MAX: '3' })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)

  t.equal((await a.app.inject(TENANT_URL)).statusCode, 200)
  t.equal((await a.app.inject(TENANT_URL)).statusCode, 200)
  const third = await b.app.inject(TENANT_URL)
  t.equal(third.statusCode, 200)
  t.equal(third.headers['x-ratelimit-remaining'], '0', 'B counts the two requests A served')
  assertRateLimited(t, await b.app.inject(TENANT_URL), 3, 60)
  t.equal((await a.app.inject(TENANT_URL)).statusCode, 429, 'A sees the exhausted budget too')
})

t.test('behind one trusted proxy each client has its own budget, and a forged left-most X-Forwarded-For buys none', async (t) => {
  const simulator = await startSimulator(t)
  for (const trustProxy of ['1', '127.0.0.1', '127.0.0.0/8']) {
    await t.test(`TRUST_PROXY=${trustProxy}`, async (t) => {
      const { app } = await buildTestApp(t, testConfig(simulator, { TRUST_PROXY: trustProxy, RATE_LIMIT_MAX: '1' }))
      t.equal((await fromClient(app, '203.0.113.10')).statusCode, 200)
      assertRateLimited(t, await fromClient(app, '203.0.113.10'), 1, 60)
      // The proxy appends the address it saw; whatever the client wrote before it is the client's own invention.
      for (const forged of ['198.51.100.1', '198.51.100.2', '10.9.8.7']) {
        t.equal((await fromClient(app, `${forged}, 203.0.113.10`)).statusCode, 429, `forged ${forged} is not the client`)
      }
      t.equal((await fromClient(app, '203.0.113.20')).statusCode, 200, 'another client is not limited by the first')
    })
  }
})

t.test('a hop count trusts only that many hops: with two proxies the client is the second address from the right', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { TRUST_PROXY: '2', RATE_LIMIT_MAX: '1' }))
  t.equal((await fromClient(app, '203.0.113.10, 10.0.0.2')).statusCode, 200)
  t.equal((await fromClient(app, '198.51.100.1, 203.0.113.10, 10.0.0.3')).statusCode, 429, 'same client through another edge proxy')
  t.equal((await fromClient(app, '203.0.113.11, 10.0.0.2')).statusCode, 200)
})

t.test('proxies not in TRUST_PROXY are not believed: a direct client cannot pick its address', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_MAX: '1' }))
  t.equal((await fromClient(app, '203.0.113.10')).statusCode, 200)
  t.equal((await fromClient(app, '203.0.113.20')).statusCode, 429, 'the socket peer (127.0.0.1) is no trusted proxy')
})

t.test('a limited client stays limited after 10,000 other clients', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { RATE_LIMIT_MAX: '1', LOG_LEVEL: 'warn' }))
  const limited = '192.0.2.1'
  t.equal((await app.inject({ url: TENANT_URL, remoteAddress: limited })).statusCode, 200)
  t.equal((await app.inject({ url: TENANT_URL, remoteAddress: limited })).statusCode, 429)
  for (let client = 0; client < OTHER_CLIENTS; client++) {
    const response = await app.inject({ url: TENANT_URL, remoteAddress: `10.${client >> 16}.${(client >> 8) & 255}.${client & 255}` })
    if (response.statusCode !== 200) t.fail(`client ${client} answered ${response.statusCode}`)
  }
  t.equal((await app.inject({ url: TENANT_URL, remoteAddress: limited })).statusCode, 429, 'still limited')
})

t.test('with Redis down, each instance still limits with its own counters', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: UNREACHABLE_REDIS_URL, RATE_LIMIT_MAX: '2' }))
  t.equal((await app.inject(TENANT_URL)).statusCode, 200)
  t.equal((await app.inject(TENANT_URL)).statusCode, 200)
  assertRateLimited(t, await app.inject(TENANT_URL), 2, 60)
})

t.test('a Redis that goes away mid-run: limits continue from this instance\'s own count', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_MAX: '3' }))
  t.equal((await app.inject(TENANT_URL)).statusCode, 200)
  t.equal((await app.inject(TENANT_URL)).statusCode, 200)
  app.redis?.disconnect()
  t.equal((await app.inject(TENANT_URL)).statusCode, 200, 'the third request is still within the limit')
  assertRateLimited(t, await app.inject(TENANT_URL), 3, 60)
})

t.test('with TRUST_PROXY=false X-Forwarded-For is ignored: the budget follows the socket address', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { TRUST_PROXY: 'false', RATE_LIMIT_MAX: '1' }))

  t.equal((await fromClient(app, '203.0.113.10')).statusCode, 200)
  t.equal((await fromClient(app, '203.0.113.20')).statusCode, 429, 'a forged header does not buy a fresh budget')
  const otherSocket = await app.inject({ url: TENANT_URL, remoteAddress: '198.51.100.7' })
  t.equal(otherSocket.statusCode, 200, 'a different peer address has its own budget')
})

t.test('the limit lifts once RATE_LIMIT_WINDOW_MS has passed', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '500' }))

  t.equal((await app.inject(TENANT_URL)).statusCode, 200)
  assertRateLimited(t, await app.inject(TENANT_URL), 1, 1)
  await sleep(PAST_SHORT_WINDOW_MS)
  t.equal((await app.inject(TENANT_URL)).statusCode, 200, 'a new window allows the client again')
})

t.test('authenticated callers are limited by caller, not by address, and a key entry may set its own limit', async (t) => {
  const simulator = await startSimulator(t)
  const billing = issue('billing-svc', '*')
  const ops = issue('ops-console', '*', undefined, 4)
  const file = writeApiKeyFile(t, [billing.entry, ops.entry])
  const { app } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), RATE_LIMIT_MAX: '2' }))
  const as = (key: string, remoteAddress: string) => app.inject({ url: TENANT_URL, remoteAddress, headers: { 'x-api-key': key } })

  t.equal((await as(billing.key, '192.0.2.1')).statusCode, 200)
  t.equal((await as(billing.key, '192.0.2.2')).statusCode, 200, 'the same caller from another address')
  t.equal((await as(billing.key, '192.0.2.3')).statusCode, 429, 'a caller\'s budget follows it across addresses')
  for (let call = 1; call <= 4; call++) t.equal((await as(ops.key, '192.0.2.1')).statusCode, 200, `ops call ${call} (its own limit of 4)`)
  const limited = await as(ops.key, '192.0.2.1')
  assertRateLimited(t, limited, 4, 60)
})

t.test('failed authentications count against the address: a key cannot be guessed at speed', async (t) => {
  const simulator = await startSimulator(t)
  const valid = issue('billing-svc', '*')
  const file = writeApiKeyFile(t, [valid.entry])
  const { app, logs } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), RATE_LIMIT_MAX: '5' }))
  const guesses = Array.from({ length: 5 }, () => issue('guess', '*').key)
  for (const guess of guesses) {
    t.equal((await app.inject({ url: TENANT_URL, headers: { 'x-api-key': guess } })).statusCode, 401)
  }
  const nextGuess = await app.inject({ url: TENANT_URL, headers: { 'x-api-key': issue('guess', '*').key } })
  assertRateLimited(t, nextGuess, 5, 60)
  const noKey = await app.inject({ url: TENANT_URL })
  t.equal(noKey.statusCode, 429, 'requests without credentials share the address\'s budget')
  t.equal((await app.inject({ url: TENANT_URL, headers: { 'x-api-key': valid.key } })).statusCode, 200,
    'a valid key from that address has its own budget')
  t.equal(simulator.calls, 1)
  for (const guess of guesses) t.notOk(logs.some((line) => line.includes(guess)), 'no key in any log line')
})

t.test('a flood of bad credentials is logged as at most 10 warnings per interval', async (t) => {
  const simulator = await startSimulator(t)
  const file = writeApiKeyFile(t, [issue('billing-svc', '*').entry])
  const { app, logs } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), RATE_LIMIT_MAX: '1000' }))
  for (let call = 0; call < 50; call++) await app.inject({ url: TENANT_URL, headers: { 'x-api-key': issue('guess', '*').key } })
  const warnings = logs.map((line) => JSON.parse(line) as { msg?: string, auth?: { reason?: string } })
    .filter((line) => line.msg === 'authentication failed')
  t.equal(warnings.length, 10)
  t.ok(warnings.every((line) => line.auth?.reason === 'unknown-api-key'), 'each says why')
})
