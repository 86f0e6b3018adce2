import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { TEST_REDIS_URL, buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { findOnPath } from '../support/executables.js'
import { logLineWith } from '../support/log-lines.js'

const TTL_SECONDS = 30
const SLOW_TENANT = 'sim-slow-300'
const REQUESTS_PER_INSTANCE = 5
const REDIS_READY_LINE = 'Ready to accept connections'
const REDIS_START_TIMEOUT_MS = 5_000
// Far above what a prompt answer takes on any machine, far below the lease a stuck waiter would sit out.
const HANG_GUARD_MS = 30_000
const LONG_UPSTREAM_BUDGET_MS = '120000'
// A connection waiting that long for NxCloud must not be closed as idle first.
const LONGER_THAN_UPSTREAM_BUDGET_MS = '180000'

/** Our own client, to look at what the service stored. */
async function connectRedis (t: Test, url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => { redis.disconnect() })
  return redis
}

async function keysWithPrefix (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

/** A loopback port nothing listens on (once we have closed it). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

interface RedisServer {
  kill (): Promise<void>
}

async function startRedisServer (binary: string, port: number): Promise<RedisServer> {
  const child: ChildProcess = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = once(child, 'exit')
  await new Promise<void>((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => fail(new Error(`redis-server did not start in ${REDIS_START_TIMEOUT_MS} ms:\n${output}`)), REDIS_START_TIMEOUT_MS)
    const onExit = () => fail(new Error(`redis-server exited before it was ready:\n${output}`))
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString('utf8')
      if (!output.includes(REDIS_READY_LINE)) return
      cleanUp()
      resolve()
    }
    function fail (error: Error): void {
      cleanUp()
      child.kill('SIGKILL')
      reject(error)
    }
    function cleanUp (): void {
      clearTimeout(timer)
      child.stdout?.off('data', onOutput)
      child.off('exit', onExit)
      child.stdout?.resume()
      child.stderr?.resume()
    }
    child.stdout?.on('data', onOutput)
    child.stderr?.on('data', onOutput)
    child.once('exit', onExit)
  })
  return {
    async kill () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await exited
    },
  }
}

async function readiness (app: FastifyInstance): Promise<{ statusCode: number, body: unknown }> {
  const response = await app.inject('/readyz')
  return { statusCode: response.statusCode, body: response.json() }
}

async function redisSeen (app: FastifyInstance, state: 'up' | 'down', what: string): Promise<void> {
  await eventually(async () => ((await readiness(app)).body as { checks: { redis: string } }).checks.redis === state, { what })
}

const DEGRADED = { statusCode: 200, body: { status: 'degraded', checks: { redis: 'down' } } }
const READY = { statusCode: 200, body: { status: 'ready', checks: { redis: 'up' } } }

t.test('instances sharing Redis share the cache: A misses and stores under the prefix, B hits', async (t) => {
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, CACHE_TTL_SECONDS: String(TTL_SECONDS) })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)
  const redis = await connectRedis(t, TEST_REDIS_URL)

  const beforeTheMiss = performance.now()
  const miss = await a.app.inject(phonesUrl('demo-shop'))
  t.equal(miss.statusCode, 200)
  t.equal(miss.headers['x-cache'], 'MISS')
  const hit = await b.app.inject(phonesUrl('demo-shop'))
  t.equal(hit.statusCode, 200)
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.body, miss.body)
  t.equal(simulator.calls, 1, 'B answered from what A stored')

  const tenantKeys = (await keysWithPrefix(redis, config.CACHE_KEY_PREFIX)).filter((key) => key.endsWith(':demo-shop'))
  t.equal(tenantKeys.length, 1, 'one entry for the tenant under the prefix, and no fill lease left behind')
  const entryKey = tenantKeys[0] ?? ''
  const ttl = await redis.ttl(entryKey)
  // Redis counts down from the write on: however long this test took since, the rest of the retention is left.
  const secondsSinceTheMiss = Math.ceil((performance.now() - beforeTheMiss) / 1000)
  const retention = TTL_SECONDS + Math.max(config.CACHE_STALE_WHILE_REVALIDATE_SECONDS, config.CACHE_STALE_IF_ERROR_SECONDS)
  t.ok(ttl >= retention - secondsSinceTheMiss - 1 && ttl <= retention, `the entry is kept for the TTL and the longer stale window (ttl ${ttl})`)
  t.ok((await redis.get(entryKey))?.endsWith(hit.body), 'the entry holds the bytes B sent')
})

t.test('concurrent callers on two instances share one upstream call', async (t) => {
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)

  const responses = await Promise.all(
    Array.from({ length: REQUESTS_PER_INSTANCE * 2 }, (_, index) =>
      (index % 2 === 0 ? a : b).app.inject(phonesUrl(SLOW_TENANT)))
  )
  t.same(responses.map((response) => response.statusCode), Array(REQUESTS_PER_INSTANCE * 2).fill(200))
  t.equal(new Set(responses.map((response) => response.body)).size, 1, 'every caller got the same list')
  t.equal(simulator.calls, 1, 'exactly one upstream call across both instances')
})

t.test('a peer whose fill fails does not keep the other instance waiting: both answer 502', { timeout: HANG_GUARD_MS }, async (t) => {
  const simulator = await startSimulator(t)
  // An upstream budget (and so a fill lease) far longer than the guard: waiting the lease out would fail the test.
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, NXCLOUD_TIMEOUT_MS: LONG_UPSTREAM_BUDGET_MS, HTTP_CONNECTION_TIMEOUT_MS: LONGER_THAN_UPSTREAM_BUDGET_MS, NXCLOUD_MAX_ATTEMPTS: '1' })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)
  const redis = await connectRedis(t, TEST_REDIS_URL)

  const responses = await Promise.all([a, b].map(({ app }) => app.inject(phonesUrl('sim-code-9001'))))
  for (const response of responses) {
    t.equal(response.statusCode, 502)
    t.equal(response.json().type, ProblemTypes.upstreamError.type)
    t.equal(response.json().upstreamCode, 9001)
  }
  t.equal(simulator.calls, 2, 'a failure is not shared: each instance asked NxCloud itself')
  const leftovers = (await keysWithPrefix(redis, config.CACHE_KEY_PREFIX)).filter((key) => key.endsWith(':sim-code-9001'))
  t.same(leftovers, [], 'neither the failure nor a fill lease stays in Redis')
})

t.test('a peer waiting on a fill that times out asks NxCloud itself once the lease is given up', async (t) => {
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, NXCLOUD_TIMEOUT_MS: '300' })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)

  const responses = await Promise.all([a, b].map(({ app }) => app.inject(phonesUrl('sim-slow-2000'))))
  for (const response of responses) {
    t.equal(response.statusCode, 504)
    t.equal(response.json().type, ProblemTypes.upstreamTimeout.type)
  }
  t.equal(simulator.calls, 2, 'the lease holder timed out, then the waiter tried on its own')
})

t.test('Redis unreachable from the start: the service starts, fills its memory tier from NxCloud, and reports degraded', async (t) => {
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` })
  const { app, logs } = await buildTestApp(t, config)

  const first = await app.inject(phonesUrl('demo-shop'))
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-cache'], 'MISS', 'nothing cached yet: NxCloud answers')
  for (let call = 2; call <= 3; call++) {
    const response = await app.inject(phonesUrl('demo-shop'))
    t.equal(response.headers['x-cache'], 'HIT', `call ${call} is answered from the memory tier`)
  }
  t.equal(simulator.calls, 1, 'one NxCloud call: without Redis the memory tier still holds what this instance filled')
  t.same(await readiness(app), DEGRADED)
  t.equal(app.redisGate?.available, false, 'Redis is skipped until a probe answers')
  t.ok(logLineWith(logs, (line) => line.msg === 'cache unavailable, answering from NxCloud'), 'the cache failure is logged')
})

t.test('Redis stopped mid-run: warm tenants are answered from memory, a cold one costs one NxCloud call per instance, and the cache is shared again once Redis is back', async (t) => {
  const binary = findOnPath('redis-server')
  if (binary === undefined) {
    t.fail('redis-server is not on PATH: this test starts and kills a Redis of its own')
    return
  }
  const port = await freePort()
  let redisServer = await startRedisServer(binary, port)
  // Registered first so it runs last, after the apps have closed.
  t.teardown(() => redisServer.kill())
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_MAX: '1000' })
  const a = await buildTestApp(t, config)
  const b = await buildTestApp(t, config)

  t.equal((await a.app.inject(phonesUrl('demo-shop'))).headers['x-cache'], 'MISS')
  t.equal((await b.app.inject(phonesUrl('demo-shop'))).headers['x-cache'], 'HIT', 'warm: B reads what A stored')
  t.equal(simulator.calls, 1)

  await redisServer.kill()
  // The memory tier stays in use through the outage: each instance only learns it may miss changes.
  for (const [name, { app, logs }] of Object.entries({ A: a, B: b })) {
    await redisSeen(app, 'down', `${name} to notice the outage`)
    await eventually(() => logLineWith(logs, (line) => line.msg?.includes('phone list changes unheard') === true),
      { what: `${name} to know it may miss changes` })
  }
  t.pass('both instances noticed the outage and know they may miss changes')

  const expectedStatus: Record<string, number> = { 'demo-shop': 200, 'demo-bank': 200, unknown: 404 }
  const requests = Array.from({ length: 30 }, (_, index) => ({
    instance: index % 2 === 0 ? a : b,
    appkey: Object.keys(expectedStatus)[index % 3] ?? 'demo-shop',
  }))
  const responses = await Promise.all(requests.map(({ instance, appkey }) => instance.app.inject(phonesUrl(appkey))))
  responses.forEach((response, index) => {
    const appkey = requests[index]?.appkey ?? ''
    t.equal(response.statusCode, expectedStatus[appkey], `${appkey} answers as NxCloud says during the outage`)
    if (appkey === 'demo-shop') t.equal(response.headers['x-cache'], 'HIT', 'the warm tenant comes from memory')
    if (response.statusCode === 404) t.equal(response.json().type, ProblemTypes.tenantNotFound.type)
  })
  t.equal(simulator.calls, 1 + 2 * 2, 'demo-bank and the unknown appkey: one call each per instance, however many asked')
  t.same(await readiness(a.app), DEGRADED)
  t.same(await readiness(b.app), DEGRADED)

  redisServer = await startRedisServer(binary, port)
  await redisSeen(a.app, 'up', 'A to reconnect')
  await redisSeen(b.app, 'up', 'B to reconnect')
  t.same(await readiness(a.app), READY)
  for (const [name, { logs }] of Object.entries({ A: a, B: b })) {
    await eventually(() => logLineWith(logs, (line) => line.msg?.includes('phone list changes heard: what the memory tier held') === true),
      { what: `${name} to hear changes again` })
  }
  t.pass('both hear changes again')

  const callsBefore = simulator.calls
  t.equal((await a.app.inject(phonesUrl('demo-bank'))).headers['x-cache'], 'MISS', 'what A held through the outage was dropped, and the new Redis is empty')
  const hit = await b.app.inject(phonesUrl('demo-bank'))
  t.equal(hit.statusCode, 200)
  t.equal(hit.headers['x-cache'], 'HIT', 'caching is shared again')
  t.equal(simulator.calls, callsBefore + 1)
})
