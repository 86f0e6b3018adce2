import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { PROBLEM_CONTENT_TYPE } from '../../src/errors/problem-schema.js'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { HttpHeaders } from '../../src/http/headers.js'
import { TEST_REDIS_URL, buildTestApp, phonesUrl, startSimulator, testConfig, uniqueKeyPrefix } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { eventually } from '../support/eventually.js'
import type { RedisClient } from '../../src/redis/redis-client.js'
import { fakeDate } from '../support/fake-date.js'

const TENANT_URL = phonesUrl('demo-shop')
const DEFAULT_WINDOW_SECONDS = 60
const DEFAULT_WINDOW_MS = DEFAULT_WINDOW_SECONDS * 1000
const CONCURRENT_CLIENTS = 50
// Nothing listens on port 9 (discard) on loopback: connections are refused at once.
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:9'
const SYNC_MS = 50
// Requests from loopback without credentials are counted under the client's address.
const LOOPBACK_CLIENT = '127.0.0.1'
// Sync modes a Redis-backed behaviour must hold in: batched (the default) and exact.
const SYNC_MODES = ['100', '0']
// A command that times out is sent again (it may have run): on this busy shared machine that would count
// some requests twice. The tests of exact counts give Redis time; outages are made by disconnecting.
const PATIENT_REDIS = { REDIS_URL: TEST_REDIS_URL, REDIS_COMMAND_TIMEOUT_MS: '5000' }
// The limiter's three ways of counting, which the access guard must drive alike (exact mode answers late).
const LIMITER_MODES: Array<[string, Record<string, string>]> = [
  ['in-process', {}],
  ['batched', { ...PATIENT_REDIS }],
  ['exact', { ...PATIENT_REDIS, RATE_LIMIT_SYNC_MS: '0' }],
]

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

interface RequestOptions {
  headers?: Record<string, string>
  /** The client's own address on loopback (any of 127.0.0.0/8), so one test can be several clients. */
  from?: string
  path?: string
}

interface LimitedApp {
  app: FastifyInstance
  get (options?: RequestOptions): Promise<Answer>
}

/** The real app listening on loopback, and a client for it that can call from several addresses. */
async function startApp (t: Test, simulator: NxCloudSimulator, env: Record<string, string>): Promise<LimitedApp> {
  const { app } = await buildTestApp(t, testConfig(simulator, { LOG_LEVEL: 'warn', ...env }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const agents = new Map<string, Agent>()
  t.teardown(async () => { await Promise.all([...agents.values()].map((agent) => agent.close())) })
  function agentFrom (address: string): Agent {
    let agent = agents.get(address)
    if (agent === undefined) {
      agent = new Agent({ localAddress: address })
      agents.set(address, agent)
    }
    return agent
  }
  return {
    app,
    async get ({ headers = {}, from = '127.0.0.1', path = TENANT_URL } = {}) {
      const response = await request(origin + path, { headers, dispatcher: agentFrom(from) })
      return { status: response.statusCode, headers: response.headers, body: await response.body.text() }
    },
  }
}

function fromClient (limited: LimitedApp, forwardedFor: string): Promise<Answer> {
  return limited.get({ headers: { 'x-forwarded-for': forwardedFor } })
}

function serviceLimitOf (t: Test, answer: Answer): { remaining: number, resetSeconds: number } {
  const integerField = (name: string): number => {
    const field = String(answer.headers[name])
    t.match(field, /^\d+$/, `${name} is a whole number (got ${field})`)
    return Number(field)
  }
  return { remaining: integerField(HttpHeaders.rateLimitRemaining.name), resetSeconds: integerField(HttpHeaders.rateLimitReset.name) }
}

/** The draft-ietf-httpapi-ratelimit-headers fields, and none of the legacy X-RateLimit-* ones. */
function assertLimitFields (t: Test, answer: Answer, max: number, remaining: number, windowSeconds = DEFAULT_WINDOW_SECONDS): number {
  t.equal(answer.headers[HttpHeaders.rateLimitLimit.name], String(max), 'RateLimit-Limit')
  const limit = serviceLimitOf(t, answer)
  t.equal(limit.remaining, remaining, 'remaining quota')
  t.ok(limit.resetSeconds >= 1 && limit.resetSeconds <= windowSeconds, `t is whole seconds within the window (got ${limit.resetSeconds})`)
  t.notOk(Object.keys(answer.headers).some((name) => name.startsWith('x-ratelimit')), 'no legacy X-RateLimit-* fields')
  return limit.resetSeconds
}

function assertRateLimited (t: Test, answer: Answer, max: number, windowSeconds = DEFAULT_WINDOW_SECONDS): void {
  t.equal(answer.status, 429)
  t.match(answer.headers['content-type'], PROBLEM_CONTENT_TYPE)
  const problem = JSON.parse(answer.body) as { type: string, title: string, status: number }
  t.equal(problem.type, ProblemTypes.rateLimited.type)
  t.equal(problem.title, ProblemTypes.rateLimited.title)
  t.equal(problem.status, 429)
  const resetSeconds = assertLimitFields(t, answer, max, 0, windowSeconds)
  t.equal(answer.headers['retry-after'], String(resetSeconds), 'Retry-After is the end of the window, as RateLimit-Reset says')
}

/** What Redis holds for a client: the requests every instance has shared so far in its window. */
async function sharedCount (t: Test, keyPrefix: string, client = LOOPBACK_CLIENT): Promise<number> {
  const redis = new Redis(TEST_REDIS_URL)
  try {
    return Number(await redis.get(`${keyPrefix}rate-limit:v3:${client}`) ?? 0)
  } finally {
    redis.disconnect()
  }
}

/** Waits until the instances have shared at least `count` requests of the client through Redis. */
async function untilShared (t: Test, keyPrefix: string, count: number): Promise<void> {
  await eventually(async () => await sharedCount(t, keyPrefix) >= count, { what: `${count} requests shared through Redis` })
}

const LIMITER_COMMANDS = new Set(['evalsha', 'eval'])

/**
 * Counts the Redis commands the instances send for this test's rate-limit counters: the scripts (each
 * once, not its inner calls), not the test's own reads of a count.
 */
async function watchLimiterCommands (t: Test, keyPrefix: string): Promise<() => number> {
  // No ready check: its INFO reply could arrive amid the monitor's stream and confuse the client.
  const redis = new Redis(TEST_REDIS_URL, { enableReadyCheck: false })
  const monitor = await redis.monitor()
  t.teardown(() => {
    monitor.disconnect()
    redis.disconnect()
  })
  let commands = 0
  // The limiter sends scripts only; the GETs with which the tests look at the counts are not its.
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && LIMITER_COMMANDS.has(args[0]?.toLowerCase() ?? '') && args.some((arg) => arg.startsWith(`${keyPrefix}rate-limit:`))) commands++
  })
  return () => commands
}

t.test('in-process: past RATE_LIMIT_MAX a client gets 429 problem+json with the RateLimit fields and Retry-After, and NxCloud is not called', async (t) => {
  const simulator = await startSimulator(t)
  const limited = await startApp(t, simulator, { RATE_LIMIT_MAX: '3' })

  for (let request = 1; request <= 3; request++) {
    const answer = await limited.get()
    t.equal(answer.status, 200, `request ${request} is allowed`)
    assertLimitFields(t, answer, 3, 3 - request)
  }
  assertRateLimited(t, await limited.get(), 3)
  assertRateLimited(t, await limited.get(), 3)
  t.equal(simulator.calls, 1, 'one MISS, two HITs, and the limited requests never reached the service')
})

t.test('the probes are not limited and carry no RateLimit fields; other routes are limited', async (t) => {
  const simulator = await startSimulator(t)
  const limited = await startApp(t, simulator, { RATE_LIMIT_MAX: '1' })
  for (let call = 0; call < 3; call++) {
    const probe = await limited.get({ path: '/healthz' })
    t.equal(probe.status, 200)
    t.equal(probe.headers[HttpHeaders.rateLimitRemaining.name], undefined)
  }
  t.equal((await limited.get({ path: '/openapi.json' })).status, 200)
  assertRateLimited(t, await limited.get({ path: '/openapi.json' }), 1)
})

/** Closes the app's Redis connection, as an outage would, and waits until the client knows it. */
async function disconnect (redis: RedisClient | undefined): Promise<void> {
  if (redis === undefined) return
  const ended = once(redis, 'end')
  redis.disconnect()
  await ended
}

async function reconnect (redis: RedisClient | undefined): Promise<void> {
  if (redis === undefined) return
  const ready = once(redis, 'ready')
  await redis.connect()
  await ready
}

/** The most syncs two instances can make in that time: one per interval each, and the one under way at either end. */
function syncsIn (elapsedSeconds: number, syncMs: number): number {
  return 2 * (Math.ceil(elapsedSeconds * 1000 / syncMs) + 2)
}

/** Two instances sharing one Redis and one key prefix, as a deployment's replicas do. */
async function startTwoInstances (t: Test, simulator: NxCloudSimulator, env: Record<string, string>): Promise<[LimitedApp, LimitedApp, string]> {
  const keyPrefix = uniqueKeyPrefix()
  const shared = { ...PATIENT_REDIS, CACHE_KEY_PREFIX: keyPrefix, ...env }
  return [await startApp(t, simulator, shared), await startApp(t, simulator, shared), keyPrefix]
}

t.test('RATE_LIMIT_SYNC_MS=0: the count is exact across instances, one Redis command per counted request', async (t) => {
  const simulator = await startSimulator(t)
  const [a, b, keyPrefix] = await startTwoInstances(t, simulator, { RATE_LIMIT_MAX: '10', RATE_LIMIT_SYNC_MS: '0' })
  const commands = await watchLimiterCommands(t, keyPrefix)

  const answers = await Promise.all(Array.from({ length: 30 }, (_, index) => (index % 2 === 0 ? a : b).get()))
  const allowed = answers.filter((answer) => answer.status === 200)
  t.equal(allowed.length, 10, 'exactly RATE_LIMIT_MAX requests are allowed, whichever instance served them')
  t.same(allowed.map((answer) => serviceLimitOf(t, answer).remaining).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    'each allowed request saw its own place in the shared count')
  for (const answer of answers.filter((answer) => answer.status !== 200)) assertRateLimited(t, answer, 10)
  // Requests in flight together all ask Redis; once an instance knows the client is over, it asks no more.
  t.ok(commands() >= 10 && commands() <= 30, `one command per request counted (${commands()} for 30 requests)`)
  t.equal((await a.get()).status, 429, 'A sees the exhausted budget')
  t.equal((await b.get()).status, 429, 'B too')
})

t.test('batched: an instance learns the others\' counts at its next sync', async (t) => {
  const simulator = await startSimulator(t)
  const max = 100
  const [a, b, keyPrefix] = await startTwoInstances(t, simulator, { RATE_LIMIT_MAX: String(max), RATE_LIMIT_SYNC_MS: String(SYNC_MS) })
  const remainingAfter = async (instance: LimitedApp): Promise<number> => Number((await instance.get()).headers[HttpHeaders.rateLimitRemaining.name])

  for (let request = 1; request <= 3; request++) t.equal((await a.get()).status, 200)
  await untilShared(t, keyPrefix, 3)
  // B has not seen this client yet: it counts from zero until its own first sync (the documented overshoot).
  assertLimitFields(t, await b.get(), max, max - 1)
  let fromB = 1
  await eventually(async () => await remainingAfter(b) === max - 3 - ++fromB, { what: 'B to count A\'s requests after its sync' })
  // A synced nothing since its own three (it had nothing to send): it counts on from what it knew.
  assertLimitFields(t, await a.get(), max, max - 4)
  let fromA = 4
  await eventually(async () => await remainingAfter(a) === max - fromB - ++fromA, { what: 'A to count B\'s requests after its sync' })
  t.pass(`A and B agree on the client's ${fromA + fromB} requests`)
})

t.test('batched: a caller spread over two instances is limited near its limit, within the README bound, for a few Redis commands', async (t) => {
  const simulator = await startSimulator(t)
  const max = 100
  const [a, b, keyPrefix] = await startTwoInstances(t, simulator, { RATE_LIMIT_MAX: String(max), RATE_LIMIT_SYNC_MS: String(SYNC_MS) })
  await a.get({ path: '/healthz' })
  const commands = await watchLimiterCommands(t, keyPrefix)

  // A steady client, not a burst: about 200 requests per second over both instances.
  const requests = 3 * max
  let allowed = 0
  const started = Date.now()
  for (let index = 0; index < requests; index++) {
    const answer = await (index % 2 === 0 ? a : b).get()
    if (answer.status === 200) allowed++
    await sleep(5)
  }
  const elapsedSeconds = (Date.now() - started) / 1000
  const ratePerInstance = requests / 2 / elapsedSeconds
  // README: at most max + N × r × (2 × RATE_LIMIT_SYNC_MS + two Redis round trips); the round trips and
  // a late timer on this shared machine are granted 50 ms.
  const bound = max + 2 * ratePerInstance * (2 * SYNC_MS + 50) / 1000
  t.ok(allowed >= max, `never refused before the limit (${allowed} allowed)`)
  t.ok(allowed <= bound, `${allowed} allowed, at most ${bound.toFixed(0)} (max + what both admit in two sync intervals)`)
  t.ok(allowed < 2 * max, 'far from each instance admitting the whole limit on its own')
  t.ok(commands() <= syncsIn(elapsedSeconds, SYNC_MS), `at most one command per instance and sync interval (${commands()} for ${requests} requests)`)
})

t.test('batched: a busy caller costs one Redis command per instance and sync interval, not one per request', async (t) => {
  const simulator = await startSimulator(t)
  const syncMs = 4 * SYNC_MS
  const [a, b, keyPrefix] = await startTwoInstances(t, simulator, { RATE_LIMIT_MAX: '1000000', RATE_LIMIT_SYNC_MS: String(syncMs) })
  await Promise.all([a, b].map((instance) => instance.get()))
  const commands = await watchLimiterCommands(t, keyPrefix)

  const requests = 4000
  let next = 0
  const started = Date.now()
  await Promise.all(Array.from({ length: CONCURRENT_CLIENTS }, async () => {
    for (let index = next++; index < requests; index = next++) {
      const answer = await (index % 2 === 0 ? a : b).get()
      if (answer.status !== 200) t.fail(`request ${index} answered ${answer.status}`)
    }
  }))
  await untilShared(t, keyPrefix, 2 + requests)
  const elapsedSeconds = (Date.now() - started) / 1000
  t.ok(commands() <= syncsIn(elapsedSeconds, syncMs), `${commands()} commands for ${requests} requests in ${elapsedSeconds.toFixed(1)} s`)
  t.ok(commands() <= requests / 10, 'far below one per request (one per 1,000 at 10,000 requests/s and the default 100 ms)')
  const exact = await startApp(t, simulator, { ...PATIENT_REDIS, CACHE_KEY_PREFIX: keyPrefix, RATE_LIMIT_MAX: '1000000', RATE_LIMIT_SYNC_MS: '0' })
  assertLimitFields(t, await exact.get(), 1_000_000, 1_000_000 - (2 + requests + 1), DEFAULT_WINDOW_SECONDS)
})

t.test('batched: the counts not yet shared reach Redis when an instance closes', async (t) => {
  const simulator = await startSimulator(t)
  const keyPrefix = uniqueKeyPrefix()
  const env = { ...PATIENT_REDIS, CACHE_KEY_PREFIX: keyPrefix, RATE_LIMIT_MAX: '10' }
  // An interval far longer than the test: only closing can send the counts.
  const closing = await startApp(t, simulator, { ...env, RATE_LIMIT_SYNC_MS: '600000' })
  for (let request = 1; request <= 4; request++) t.equal((await closing.get()).status, 200)
  await closing.app.close()

  const exact = await startApp(t, simulator, { ...env, RATE_LIMIT_SYNC_MS: '0' })
  assertLimitFields(t, await exact.get(), 10, 10 - 5)
})

for (const syncMs of SYNC_MODES) {
  t.test(`RATE_LIMIT_SYNC_MS=${syncMs}: with Redis down from the start, each instance still limits with its own counters`, async (t) => {
    const simulator = await startSimulator(t)
    const limited = await startApp(t, simulator, { REDIS_URL: UNREACHABLE_REDIS_URL, RATE_LIMIT_MAX: '2', RATE_LIMIT_SYNC_MS: syncMs })
    t.equal((await limited.get()).status, 200)
    t.equal((await limited.get()).status, 200)
    assertRateLimited(t, await limited.get(), 2)
  })

  t.test(`RATE_LIMIT_SYNC_MS=${syncMs}: a Redis that goes away mid-run: limits continue from this instance's count, which reaches Redis once it is back`, async (t) => {
    const simulator = await startSimulator(t)
    const keyPrefix = uniqueKeyPrefix()
    const env = { ...PATIENT_REDIS, CACHE_KEY_PREFIX: keyPrefix, RATE_LIMIT_MAX: '6' }
    const limited = await startApp(t, simulator, { ...env, RATE_LIMIT_SYNC_MS: syncMs })
    t.equal((await limited.get()).status, 200)
    t.equal((await limited.get()).status, 200)
    await untilShared(t, keyPrefix, 2)
    await disconnect(limited.app.redis)
    for (let request = 3; request <= 6; request++) t.equal((await limited.get()).status, 200, `request ${request} is within the limit`)
    assertRateLimited(t, await limited.get(), 6)

    await reconnect(limited.app.redis)
    // Batched: the next sync sends what was counted meanwhile; exact: the next request does.
    assertRateLimited(t, await limited.get(), 6)
    await untilShared(t, keyPrefix, 6)
    const exact = await startApp(t, simulator, { ...env, RATE_LIMIT_SYNC_MS: '0' })
    assertRateLimited(t, await exact.get(), 6)
  })
}

t.test('behind one trusted proxy each client has its own budget, and a forged left-most X-Forwarded-For buys none', async (t) => {
  const simulator = await startSimulator(t)
  for (const trustProxy of ['1', '127.0.0.1', '127.0.0.0/8']) {
    await t.test(`TRUST_PROXY=${trustProxy}`, async (t) => {
      const limited = await startApp(t, simulator, { TRUST_PROXY: trustProxy, RATE_LIMIT_MAX: '1' })
      t.equal((await fromClient(limited, '203.0.113.10')).status, 200)
      assertRateLimited(t, await fromClient(limited, '203.0.113.10'), 1)
      // The proxy appends the address it saw; whatever the client wrote before it is the client's own invention.
      for (const forged of ['198.51.100.1', '198.51.100.2', '10.9.8.7']) {
        t.equal((await fromClient(limited, `${forged}, 203.0.113.10`)).status, 429, `forged ${forged} is not the client`)
      }
      t.equal((await fromClient(limited, '203.0.113.20')).status, 200, 'another client is not limited by the first')
    })
  }
})

t.test('a hop count trusts only that many hops: with two proxies the client is the second address from the right', async (t) => {
  const simulator = await startSimulator(t)
  const limited = await startApp(t, simulator, { TRUST_PROXY: '2', RATE_LIMIT_MAX: '1' })
  t.equal((await fromClient(limited, '203.0.113.10, 10.0.0.2')).status, 200)
  t.equal((await fromClient(limited, '198.51.100.1, 203.0.113.10, 10.0.0.3')).status, 429, 'same client through another edge proxy')
  t.equal((await fromClient(limited, '203.0.113.11, 10.0.0.2')).status, 200)
})

t.test('proxies not in TRUST_PROXY are not believed: a direct client cannot pick its address', async (t) => {
  const simulator = await startSimulator(t)
  const limited = await startApp(t, simulator, { TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_MAX: '1' })
  t.equal((await fromClient(limited, '203.0.113.10')).status, 200)
  t.equal((await fromClient(limited, '203.0.113.20')).status, 429, 'the socket peer (127.0.0.1) is no trusted proxy')
})

t.test('with TRUST_PROXY=false X-Forwarded-For is ignored: the budget follows the socket address', async (t) => {
  const simulator = await startSimulator(t)
  const limited = await startApp(t, simulator, { TRUST_PROXY: 'false', RATE_LIMIT_MAX: '1' })

  t.equal((await fromClient(limited, '203.0.113.10')).status, 200)
  t.equal((await fromClient(limited, '203.0.113.20')).status, 429, 'a forged header does not buy a fresh budget')
  t.equal((await limited.get({ from: '127.0.0.7' })).status, 200, 'a different peer address has its own budget')
})

t.test('the limit lifts once RATE_LIMIT_WINDOW_MS has passed', async (t) => {
  const simulator = await startSimulator(t)
  const limited = await startApp(t, simulator, { RATE_LIMIT_MAX: '1' })
  const clock = fakeDate(t)

  t.equal((await limited.get()).status, 200)
  assertRateLimited(t, await limited.get(), 1)
  clock.tick(DEFAULT_WINDOW_MS - 1)
  assertRateLimited(t, await limited.get(), 1)
  clock.tick(1)
  t.equal((await limited.get()).status, 200, 'a new window allows the client again')
})

for (const [mode, limiterEnv] of LIMITER_MODES) {
  t.test(`${mode}: authenticated callers are limited by caller, not by address, and a key entry may set its own limit`, async (t) => {
    const simulator = await startSimulator(t)
    const billing = issue('billing-svc', '*')
    const ops = issue('ops-console', '*', undefined, 4)
    const file = writeApiKeyFile(t, [billing.entry, ops.entry])
    const limited = await startApp(t, simulator, { ...apiKeyEnv(file), ...limiterEnv, RATE_LIMIT_MAX: '2' })
    const as = (key: string, from: string) => limited.get({ from, headers: { 'x-api-key': key } })

    assertLimitFields(t, await as(billing.key, '127.0.0.1'), 2, 1)
    t.equal((await as(billing.key, '127.0.0.2')).status, 200, 'the same caller from another address')
    t.equal((await as(billing.key, '127.0.0.3')).status, 429, 'a caller\'s budget follows it across addresses')
    for (let call = 1; call <= 4; call++) {
      const answer = await as(ops.key, '127.0.0.1')
      t.equal(answer.status, 200, `ops call ${call} (its own limit of 4)`)
      assertLimitFields(t, answer, 4, 4 - call)
    }
    assertRateLimited(t, await as(ops.key, '127.0.0.1'), 4)
  })

  t.test(`${mode}: failed authentications count against the address: a key cannot be guessed at speed`, async (t) => {
    const simulator = await startSimulator(t)
    const valid = issue('billing-svc', '*')
    const file = writeApiKeyFile(t, [valid.entry])
    const { app, logs } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), ...limiterEnv, RATE_LIMIT_MAX: '5' }))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const get = async (headers: Record<string, string> = {}): Promise<Answer> => {
      const response = await request(origin + TENANT_URL, { headers })
      return { status: response.statusCode, headers: response.headers, body: await response.body.text() }
    }
    const guesses = Array.from({ length: 5 }, () => issue('guess', '*').key)
    const answers = []
    for (const guess of guesses) answers.push(await get({ 'x-api-key': guess }))
    t.same(answers.map((answer) => answer.status), [401, 401, 401, 401, 401])
    answers.forEach((answer, index) => { assertLimitFields(t, answer, 5, 4 - index) })
    assertRateLimited(t, await get({ 'x-api-key': issue('guess', '*').key }), 5)
    t.equal((await get()).status, 429, 'requests without credentials share the address\'s budget')
    t.equal((await get({ 'x-api-key': valid.key })).status, 200, 'a valid key from that address has its own budget')
    t.equal(simulator.calls, 1)
    for (const guess of guesses) t.notOk(logs.some((line) => line.includes(guess)), 'no key in any log line')
  })
}

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
