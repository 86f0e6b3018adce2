import { randomUUID } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { storedPhoneList } from '../../src/cache/phone-list-store.js'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { TEST_REDIS_URL, deleteKeysWithPrefix, startSimulator, testConfig } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { fakeDate } from '../support/fake-date.js'
import { startInstance, type Answer, type Instance } from '../support/listening-instance.js'
import { logLineWith } from '../support/log-lines.js'
import { peerPhoneListStore } from '../support/peer-store.js'

// How soon a change reaches the other instances is measured by test/bench/edge-figures.ts; here, that it does.
const HITS_COUNTED = 200
const CACHE_HEADERS = ['x-cache', 'age', 'cache-control', 'cache-status', 'etag'] as const
// The feed's heartbeat takes a subscriber silent for longer than 2.5 s by Date.now() for lost: a fake Date moved past it.
const PAST_SILENCE_LIMIT_MS = 2_500 + 1
// Far longer than any answer is held back below.
const LATE_ANSWERS_TIMEOUT_MS = 60_000
// Past a one-second TTL, on a fake Date: the memory tier keeps an entry until fetchedAtMs + TTL by Date.now().
const PAST_ONE_SECOND_MS = 1_100
// Into an entry's second second: its Age is 1.
const ONE_POINT_TWO_SECONDS_MS = 1_200

function twoInstanceConfig (simulator: NxCloudSimulator, env: Record<string, string> = {}) {
  return testConfig(simulator, { REDIS_URL: TEST_REDIS_URL, RATE_LIMIT_MAX: '1000000', ...env })
}

async function connectRedis (t: Test): Promise<Redis> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  await redis.connect()
  t.teardown(() => { redis.disconnect() })
  return redis
}

/**
 * Counts the commands that touch a tenant's cache entry or fill lease under one prefix, as Redis's
 * own MONITOR reports them (other tests' commands on the same Redis carry other prefixes).
 */
async function watchCacheCommands (t: Test, redis: Redis, keyPrefix: string) {
  const monitor = await redis.monitor()
  t.teardown(() => { monitor.disconnect() })
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((arg) => arg.startsWith(`${keyPrefix}phones`))) seen.push(args)
  })
  return {
    /** Commands seen so far, once every command sent before this call has been reported. */
    async settled (): Promise<string[][]> {
      const marker = `${keyPrefix}phones-marker:${randomUUID()}`
      await redis.echo(marker)
      await eventually(() => seen.some((args) => args.includes(marker)), { what: 'MONITOR to report the marker' })
      const commands = seen.filter((args) => !args.includes(marker))
      seen.length = 0
      return commands
    },
  }
}

async function subscriberIds (redis: Redis, keyPrefix: string): Promise<string[]> {
  const clients = String(await redis.client('LIST')).split('\n')
  return clients
    .filter((line) => line.includes(` name=${keyPrefix}phone-list-changes `) && line.includes(' sub=1 '))
    .map((line) => /^id=(\d+) /.exec(line)?.[1] ?? '')
}

/** Asks `instance` until it answers something other than the `old` body: a change made elsewhere has reached it. */
async function firstAnswerOtherThan (instance: Instance, appkey: string, old: string): Promise<Answer> {
  return await eventually(async () => {
    const answer = await instance.get(appkey)
    return answer.body !== old && answer
  }, { what: `${appkey} to be answered with something other than the list held before` })
}

interface RedisProxy {
  url: string
  /** From now on every byte either way is dropped while the connections stay open, as in a partition. */
  swallow (): void
  /** Chunks a client sent since `swallow()`, which Redis never saw. */
  swallowedFromClients (): number
  /** From now on Redis's answers are kept back (the commands still reach Redis), until `releaseAnswers()`. */
  holdAnswers (): void
  releaseAnswers (): void
  close (): Promise<void>
}

/** A TCP proxy to the test Redis that can go silent without closing anything, or answer late. */
async function startRedisProxy (): Promise<RedisProxy> {
  const target = new URL(TEST_REDIS_URL)
  const sockets = new Set<Socket>()
  let swallowing = false
  let swallowedFromClients = 0
  let held: Array<[Socket, Buffer]> | undefined
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from)
      from.on('data', (chunk: Buffer) => {
        if (swallowing) {
          if (from === client) swallowedFromClients++
        } else if (held !== undefined && from === upstream) {
          held.push([to, chunk])
        } else {
          to.write(chunk)
        }
      })
      from.on('error', () => {})
      from.on('close', () => { sockets.delete(from); to.destroy() })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no proxy port')
  return {
    url: `redis://127.0.0.1:${address.port}`,
    swallow: () => { swallowing = true },
    swallowedFromClients: () => swallowedFromClients,
    holdAnswers: () => { held ??= [] },
    releaseAnswers: () => {
      const answers = held ?? []
      held = undefined
      for (const [client, chunk] of answers) client.write(chunk)
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function cacheHeadersOf (answer: Answer): Record<string, string | undefined> {
  return Object.fromEntries(CACHE_HEADERS.map((name) => [name, answer.headers[name]]))
}

async function warmBoth (t: Test, a: Instance, b: Instance, appkey: string): Promise<Answer> {
  const filled = await a.get(appkey)
  t.equal(filled.headers['x-cache'], 'MISS', 'A filled the entry')
  t.equal((await b.get(appkey)).headers['x-cache'], 'HIT', 'B read it from Redis')
  t.equal((await b.get(appkey)).headers['x-cache'], 'HIT', 'and holds it in memory')
  return filled
}

/** Two instances sharing a prefix, both holding demo-shop's list: A filled it, B holds it in memory. */
async function startWarmPair (t: Test, env: Record<string, string> = {}) {
  const simulator = await startSimulator(t)
  const config = twoInstanceConfig(simulator, env)
  const a = await startInstance(t, config)
  const b = await startInstance(t, config)
  const old = await warmBoth(t, a, b, 'demo-shop')
  return { simulator, a, b, old }
}

t.test('a refresh on one instance reaches the other instance\'s memory tier, without an NxCloud call there', async (t) => {
  const { simulator, a, b, old } = await startWarmPair(t)

  simulator.answerAs('demo-shop', 'demo-bank')
  const refreshed = await a.refresh('demo-shop')
  t.equal(refreshed.status, 200)
  t.not(refreshed.body, old.body)
  const calls = simulator.calls
  const answer = await firstAnswerOtherThan(b, 'demo-shop', old.body)

  t.equal(answer.body, refreshed.body, 'B serves the refreshed list')
  t.equal(answer.headers['x-cache'], 'HIT')
  t.equal(simulator.calls, calls, 'B read the new list from Redis, not from NxCloud')
})

t.test('a purge by another instance reaches the memory tier: NxCloud\'s 9010 drops the entry everywhere', async (t) => {
  const { simulator, a, b, old } = await startWarmPair(t, { NXCLOUD_MAX_ATTEMPTS: '1' })

  simulator.answerAs('demo-shop', 'demo-other')
  t.equal((await a.refresh('demo-shop')).status, 403, 'A learnt the appkey is another customer\'s')
  const answer = await firstAnswerOtherThan(b, 'demo-shop', old.body)
  t.equal(answer.status, 403, 'B no longer serves the list it held: it asked NxCloud, which refused')
  t.equal(JSON.parse(answer.body).type, ProblemTypes.tenantForbidden.type)
})

t.test('a replacement by another instance reaches the memory tier: a remembered 9008 is answered at once', async (t) => {
  const { simulator, a, b, old } = await startWarmPair(t, { NXCLOUD_MAX_ATTEMPTS: '1' })

  simulator.answerAs('demo-shop', 'sim-code-9008')
  t.equal((await a.refresh('demo-shop')).status, 404)
  const calls = simulator.calls
  const answer = await firstAnswerOtherThan(b, 'demo-shop', old.body)
  t.equal(answer.status, 404)
  t.equal(answer.headers['x-cache'], 'HIT', 'B answers the unknown appkey A stored')
  t.equal(simulator.calls, calls)
})

t.test('a change written through the shared store by any instance reaches a memory tier', async (t) => {
  const simulator = await startSimulator(t)
  const config = twoInstanceConfig(simulator)
  const b = await startInstance(t, config)
  const redis = await connectRedis(t)
  const old = (await b.get('demo-shop')).body
  t.equal((await b.get('demo-shop')).headers['x-cache'], 'HIT')

  const peer = peerPhoneListStore(t, redis, config.CACHE_KEY_PREFIX)
  const replaced = JSON.stringify({ ...JSON.parse(old), phones: [] })
  await peer.set('demo-shop', storedPhoneList(replaced, '"replaced"', Date.now()), 60)
  const answer = await firstAnswerOtherThan(b, 'demo-shop', old)
  t.equal(answer.body, replaced)
  t.equal(answer.headers['etag'], '"replaced"')
})

t.test('a dropped subscriber: once it hears changes again the memory tier is emptied, so a change it could not hear is not served past that', async (t) => {
  const simulator = await startSimulator(t)
  const config = twoInstanceConfig(simulator)
  const redis = await connectRedis(t)
  const b = await startInstance(t, config)
  const [bSubscriber] = await subscriberIds(redis, config.CACHE_KEY_PREFIX)
  t.ok(bSubscriber, 'B\'s start-up waited for its subscription, on a connection of its own')
  const a = await startInstance(t, config)
  const old = await warmBoth(t, a, b, 'demo-shop')
  const watch = await watchCacheCommands(t, redis, config.CACHE_KEY_PREFIX)

  t.equal(await redis.client('KILL', 'ID', bSubscriber ?? ''), 1, 'B\'s subscriber connection is dropped')
  // A peer's change now, while B cannot hear it: published to no subscriber of B's.
  const peer = peerPhoneListStore(t, redis, config.CACHE_KEY_PREFIX)
  const unheard = JSON.stringify({ ...JSON.parse(old.body), phones: [] })
  await peer.set('demo-shop', storedPhoneList(unheard, '"unheard"', Date.now()), 60)

  await eventually(async () => (await subscriberIds(redis, config.CACHE_KEY_PREFIX)).length === 2, { what: 'B to subscribe again' })
  t.pass('B subscribed again')
  await watch.settled()

  const afterwards = await b.get('demo-shop')
  t.equal(afterwards.body, unheard, 'B serves what Redis holds, not the list it held in memory')
  t.equal(afterwards.headers['x-cache'], 'HIT')
  t.equal((await watch.settled()).filter(([command]) => command === 'get').length, 1, 'read from Redis: the memory tier had been emptied')
  t.equal((await b.get('demo-shop')).body, unheard)
  t.same(await watch.settled(), [], 'held in memory again once subscribed')
  t.ok(logLineWith(b.logs, (line) => line.msg?.includes('phone list changes unheard') === true), 'B said it could not hear changes')
  t.ok(logLineWith(b.logs, (line) => line.msg?.includes('what the memory tier held while they were not was dropped') === true), 'and why its memory tier was emptied')
  t.equal(simulator.calls, 1, 'no instance asked NxCloud again')
})

t.test('a hit in Redis mode sends Redis no cache command; the headers of a hit are the same from either tier', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const config = twoInstanceConfig(simulator)
  const a = await startInstance(t, config)
  const b = await startInstance(t, config)
  const redis = await connectRedis(t)
  const watch = await watchCacheCommands(t, redis, config.CACHE_KEY_PREFIX)

  const filled = await a.get('demo-shop')
  // Both of B's answers at one instant, the entry 1.2 s old, so that Age and ttl agree.
  clock.tick(ONE_POINT_TWO_SECONDS_MS)
  await watch.settled()
  const fromRedis = await b.get('demo-shop')
  const readFromRedis = await watch.settled()
  const fromMemory = await b.get('demo-shop')
  const readForMemoryHit = await watch.settled()

  t.same(readFromRedis.map(([command]) => command), ['get'], 'B\'s first answer was read from Redis')
  t.same(readForMemoryHit, [], 'its second from memory')
  t.equal(fromRedis.body, filled.body)
  t.equal(fromMemory.body, filled.body)
  t.same(cacheHeadersOf(fromMemory), cacheHeadersOf(fromRedis), 'X-Cache, Age, Cache-Control, Cache-Status and ETag alike')
  t.equal(fromMemory.headers['x-cache'], 'HIT')
  t.equal(fromMemory.headers['age'], '1', 'Age tells the list\'s age, not the copy\'s')

  for (let hit = 0; hit < HITS_COUNTED; hit++) {
    const answer = await b.get('demo-shop')
    if (answer.headers['x-cache'] !== 'HIT') t.fail(`hit ${hit} answered ${answer.headers['x-cache']}`)
  }
  t.same(await watch.settled(), [], `${HITS_COUNTED} hits, not one command on the cache's keys`)
})

t.test('the memory tier keeps a list no longer than it is fresh: past the TTL the instance asks Redis', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const config = twoInstanceConfig(simulator, { CACHE_TTL_SECONDS: '1' })
  const a = await startInstance(t, config)
  const b = await startInstance(t, config)
  await warmBoth(t, a, b, 'demo-shop')
  const redis = await connectRedis(t)
  const watch = await watchCacheCommands(t, redis, config.CACHE_KEY_PREFIX)
  clock.tick(PAST_ONE_SECOND_MS)

  const stale = await b.get('demo-shop')
  t.equal(stale.headers['x-cache'], 'STALE', 'past its freshness the list is stale, and B says so')
  t.match(stale.headers['cache-status'], /detail=stale-while-revalidate/)
  const commands = (await watch.settled()).map(([command]) => command)
  t.ok(commands.includes('get'), `B asked Redis (${commands.join(', ')})`)
})

t.test('a subscriber that goes silent without closing is taken for lost, while the memory tier answers on without waiting on Redis', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const proxy = await startRedisProxy()
  const config = twoInstanceConfig(simulator, { REDIS_URL: proxy.url })
  t.teardown(() => deleteKeysWithPrefix(TEST_REDIS_URL, config.CACHE_KEY_PREFIX))
  const b = await startInstance(t, config)
  // Runs before the app closes (teardowns run last first): nothing then waits on a silent Redis.
  t.teardown(() => proxy.close())
  const old = (await b.get('demo-shop')).body
  t.equal((await b.get('demo-shop')).headers['x-cache'], 'HIT')

  proxy.swallow()
  // The heartbeat runs on a real timer; what it compares is Date.now() with when it last heard Redis. A
  // PING answered just before the swallow would set that to the moved clock if it settled after the move,
  // and the frozen clock would never leave it: the clock moves once a command has gone unanswered.
  await eventually(() => proxy.swallowedFromClients() > 0, { what: 'a command B sent to go unanswered' })
  clock.tick(PAST_SILENCE_LIMIT_MS)
  await eventually(() => logLineWith(b.logs, (line) => line['reason'] === 'no answer to heartbeat'), { what: 'B to take its silent subscriber for lost' })
  const during = await b.get('demo-shop')
  t.equal(during.body, old, 'B answers the list it holds while it is fresh')
  t.equal(during.headers['x-cache'], 'HIT')
  t.equal(simulator.calls, 1, 'without asking NxCloud again')
  // A tenant B does not hold: its first Redis command waits out the timeout and closes the gate.
  t.equal((await b.get('demo-bank')).status, 200)
  t.equal(b.app.redisGate?.available, false, 'Redis is skipped from then on')
  t.equal((await b.get('demo-bank')).headers['x-cache'], 'HIT', 'and the list NxCloud gave is held in memory')
  t.equal(simulator.calls, 2)
})

t.test('a stale list a peer refreshed between this instance\'s read and its fill lease is not asked of NxCloud again', async (t) => {
  const clock = fakeDate(t)
  const simulator = await startSimulator(t)
  const proxy = await startRedisProxy()
  const config = twoInstanceConfig(simulator, { CACHE_TTL_SECONDS: '1', CACHE_STALE_WHILE_REVALIDATE_SECONDS: '60' })
  t.teardown(() => deleteKeysWithPrefix(TEST_REDIS_URL, config.CACHE_KEY_PREFIX))
  const a = await startInstance(t, config)
  // B's answers from Redis come late on purpose: a long command timeout keeps them from counting as failures.
  const b = await startInstance(t, { ...config, REDIS_URL: proxy.url, REDIS_COMMAND_TIMEOUT_MS: LATE_ANSWERS_TIMEOUT_MS })
  t.teardown(() => proxy.close())
  const redis = await connectRedis(t)
  const watch = await watchCacheCommands(t, redis, config.CACHE_KEY_PREFIX)
  const leaseKey = `${config.CACHE_KEY_PREFIX}phones-fill:v1:demo-shop`
  t.equal((await a.get('demo-shop')).headers['x-cache'], 'MISS')
  clock.tick(PAST_ONE_SECOND_MS)

  // B reads the stale list from Redis, and gets it only after A has refreshed and stored it.
  proxy.holdAnswers()
  const readByB = b.get('demo-shop')
  await eventually(async () => (await watch.settled()).some(([command]) => command === 'get'), { what: 'B\'s read to reach Redis' })
  t.equal((await a.get('demo-shop')).headers['x-cache'], 'STALE', 'A serves the stale list and refreshes it')
  await eventually(async () => (await a.get('demo-shop')).headers['x-cache'] === 'HIT', { what: 'A to store the refreshed list' })
  await eventually(async () => await redis.exists(leaseKey) === 0, { what: 'A to give back its fill lease' })
  await watch.settled()
  proxy.releaseAnswers()

  t.equal((await readByB).headers['x-cache'], 'STALE', 'B answers the list it read, and refreshes it in the background')
  // Its refresh takes the lease, free again, and ends by giving it back.
  await eventually(async () => (await watch.settled()).some((args) => args[0]?.startsWith('eval') === true && args.includes(leaseKey)),
    { what: 'B\'s refresh to give back its lease' })
  t.equal(simulator.calls, 2, 'one refresh: B found the list A had stored instead of asking NxCloud again')
})
