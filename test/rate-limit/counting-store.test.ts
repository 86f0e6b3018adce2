import t from 'tap'
import { createCountingStore, type RateLimitStore, type StoreAnswer } from '../../src/rate-limit/counting-store.js'

const WINDOW_MS = 60_000
const START_MS = 1_800_000_000_000
const OTHER_CLIENTS = 100

/** A store counting alone, on a clock the test moves. */
function countingAlone (maxTracked = 1_000): { store: RateLimitStore, clock: { nowMs: number } } {
  const clock = { nowMs: START_MS }
  const { Store } = createCountingStore({ maxTracked, shared: undefined, now: () => clock.nowMs })
  return { store: new Store({}), clock }
}

/** Counting alone answers at once, as @fastify/rate-limit's own LocalStore does. */
function incr (store: RateLimitStore, key: string, max: number, windowMs = WINDOW_MS): StoreAnswer {
  let answered: StoreAnswer | undefined
  store.incr(key, (error, answer) => {
    if (error !== null) throw error
    answered = answer
  }, windowMs, max)
  if (answered === undefined) throw new Error('counting in process must answer synchronously')
  return answered
}

t.test('a refused request is counted once: the count stops at max + 1', async (t) => {
  const { store } = countingAlone()
  t.same([1, 2, 3, 4, 5].map(() => incr(store, 'key:a', 2).current), [1, 2, 3, 3, 3])
})

t.test('a window starts at the client\'s first request and lasts the time window; the next one starts from zero', async (t) => {
  const { store, clock } = countingAlone()
  t.same(incr(store, 'key:a', 10), { current: 1, ttl: WINDOW_MS })
  clock.nowMs = START_MS + WINDOW_MS - 1
  t.same(incr(store, 'key:a', 10), { current: 2, ttl: 1 })
  clock.nowMs = START_MS + 5
  t.same(incr(store, 'key:b', 10), { current: 1, ttl: WINDOW_MS }, 'each client its own window')
  clock.nowMs = START_MS + WINDOW_MS
  t.same(incr(store, 'key:a', 10), { current: 1, ttl: WINDOW_MS })
})

t.test('a route with a limit of its own counts apart from the others', async (t) => {
  const { store } = countingAlone()
  const child = store.child({ routeInfo: { method: 'GET', url: '/special' } })
  incr(store, 'x', 5)
  t.equal(incr(store, 'x', 5).current, 2)
  t.equal(incr(child, 'x', 5).current, 1)
})

t.test('bounded: when full, clients under their limit are forgotten, a client that reached its limit never is', async (t) => {
  const { store } = countingAlone(10)
  incr(store, 'limited', 1)
  incr(store, 'limited', 1)
  incr(store, 'exhausted', 2)
  incr(store, 'exhausted', 2)
  incr(store, 'under-limit', 5)
  for (let client = 0; client < OTHER_CLIENTS; client++) incr(store, `other-${client}`, 5)

  t.equal(incr(store, 'limited', 1).current, 2, 'the refused client is still refused')
  t.equal(incr(store, 'exhausted', 2).current, 3, 'the client with no budget left is still counted')
  t.equal(incr(store, 'under-limit', 5).current, 1, 'the client under its limit was forgotten: the map stayed bounded')
})
