import { Redis } from 'ioredis'
import t from 'tap'
import type { Test } from 'tap'
import { buildTestApp, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'

// Nothing listens on port 1: the connection is refused at once, as when Redis is down.
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:1'
const PROBE_REPEATS = 3

// The last command a Redis connection ran, as the server itself reports it (CLIENT LIST's `cmd`).
async function lastCommandOf (t: Test, clientId: number): Promise<string | undefined> {
  const observer = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 })
  t.teardown(() => observer.disconnect())
  const line = String(await observer.call('CLIENT', 'LIST', 'ID', String(clientId)))
  return /(?:^| )cmd=(\S+)/.exec(line)?.[1]
}

t.test('/healthz answers 200 ok without calling NxCloud', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  for (let i = 0; i < PROBE_REPEATS; i++) {
    const response = await app.inject('/healthz')
    t.equal(response.statusCode, 200)
    t.match(response.headers['content-type'], /^application\/json/)
    t.same(response.json(), { status: 'ok' })
  }
  t.equal(simulator.calls, 0, 'no upstream call')
})

t.test('/healthz answers 200 ok while Redis is unreachable', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: UNREACHABLE_REDIS_URL }))
  t.not(app.redis?.status, 'ready', 'the app really has no Redis')
  const response = await app.inject('/healthz')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { status: 'ok' })
  t.equal(simulator.calls, 0, 'no upstream call')
})

t.test('/healthz sends no command to Redis', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL }))
  const redis = app.redis
  if (redis === undefined) return t.fail('the app has no Redis client')
  const clientId = Number(await redis.client('ID'))
  t.equal(await lastCommandOf(t, clientId), 'client|id', 'the observer sees the app connection')

  for (let i = 0; i < PROBE_REPEATS; i++) {
    t.equal((await app.inject('/healthz')).statusCode, 200)
  }
  t.equal(await lastCommandOf(t, clientId), 'client|id', 'no command after /healthz')

  t.equal((await app.inject('/readyz')).statusCode, 200)
  t.equal(await lastCommandOf(t, clientId), 'ping', 'whereas /readyz pings Redis')
  t.equal(simulator.calls, 0, 'no upstream call')
})

t.test('/readyz without Redis configured is ready, redis not-configured', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const response = await app.inject('/readyz')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { status: 'ready', checks: { redis: 'not-configured' } })
  t.equal(simulator.calls, 0, 'no upstream call')
})

t.test('/readyz with a reachable Redis is ready, redis up', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL }))
  const response = await app.inject('/readyz')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { status: 'ready', checks: { redis: 'up' } })
  t.equal(simulator.calls, 0, 'no upstream call')
})

t.test('/readyz with Redis unreachable is still 200, degraded, redis down', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: UNREACHABLE_REDIS_URL }))
  const response = await app.inject('/readyz')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { status: 'degraded', checks: { redis: 'down' } })
})
