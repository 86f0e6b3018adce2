import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'
import { parseExposition, valueOf } from './prometheus-text.js'

const GAUGE = 'nxcloud_bff_cache_change_feed_listening'
// Nothing listens on port 9 (discard) on loopback: connections are refused at once.
const UNREACHABLE_REDIS_URL = 'redis://127.0.0.1:9'

async function scrapeInProcess (app: FastifyInstance) {
  return parseExposition(await app.metrics.registry.metrics())
}

t.test('with Redis, the change feed gauge is 1 while this instance hears the changes, 0 once it stops', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL }))
  const { families, samples } = await scrapeInProcess(app)
  t.equal(families.get(GAUGE), 'gauge')
  t.equal(valueOf(samples, GAUGE), 1, 'start-up waited for the subscription')
  await app.close()
  t.equal(valueOf((await scrapeInProcess(app)).samples, GAUGE), 0, 'read at scrape time: the stopped feed hears nothing')
})

t.test('with Redis unreachable the feed is deaf: 0, beside redis_up 0', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: UNREACHABLE_REDIS_URL }))
  const { samples } = await scrapeInProcess(app)
  t.equal(valueOf(samples, GAUGE), 0)
  t.equal(valueOf(samples, 'nxcloud_bff_redis_up'), 0)
})

t.test('no feed, no gauge: in-process cache, or Redis with caching off', async (t) => {
  const simulator = await startSimulator(t)
  for (const env of [{}, { REDIS_URL: TEST_REDIS_URL, CACHE_TTL_SECONDS: '0' }]) {
    const { app } = await buildTestApp(t, testConfig(simulator, env))
    t.notOk((await scrapeInProcess(app)).families.has(GAUGE), JSON.stringify(env))
  }
})
