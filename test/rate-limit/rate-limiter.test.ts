import t from 'tap'
import { createRateLimiter, type RateLimitPartition } from '../../src/rate-limit/rate-limiter.js'
import type { WindowCount } from '../../src/rate-limit/local-counters.js'

const WINDOW_MS = 60_000
const NOW = 1_800_000_000_000
const OTHER_CLIENTS = 100

function countingAlone (maxTracked = 1_000) {
  return createRateLimiter({ windowMs: WINDOW_MS, maxTracked, shared: undefined })
}

/** In-process counting answers synchronously; copied, since the limiter answers with a live view. */
function consume (partition: RateLimitPartition, id: string, max: number, nowMs = NOW): WindowCount {
  const counted = partition.consume(id, max, nowMs)
  if (counted instanceof Promise) throw new Error('counting in process must not return a promise')
  return { count: counted.count, windowEndsAtMs: counted.windowEndsAtMs }
}

t.test('a refused request is counted once: the count stops at max + 1', async (t) => {
  const { callers } = countingAlone()
  t.same([1, 2, 3, 4, 5].map(() => consume(callers, 'key:a', 2).count), [1, 2, 3, 3, 3])
})

t.test('a window starts at the client\'s first request and lasts RATE_LIMIT_WINDOW_MS; the next one starts from zero', async (t) => {
  const { callers } = countingAlone()
  t.same(consume(callers, 'key:a', 10), { count: 1, windowEndsAtMs: NOW + WINDOW_MS })
  t.same(consume(callers, 'key:a', 10, NOW + WINDOW_MS - 1), { count: 2, windowEndsAtMs: NOW + WINDOW_MS })
  t.same(consume(callers, 'key:b', 10, NOW + 5), { count: 1, windowEndsAtMs: NOW + 5 + WINDOW_MS }, 'each client its own window')
  t.same(consume(callers, 'key:a', 10, NOW + WINDOW_MS), { count: 1, windowEndsAtMs: NOW + 2 * WINDOW_MS })
})

t.test('callers and addresses are separate budgets, even under the same name', async (t) => {
  const { callers, addresses } = countingAlone()
  consume(callers, 'x', 1)
  t.equal(consume(callers, 'x', 1).count, 2)
  t.equal(consume(addresses, 'x', 1).count, 1)
})

t.test('bounded: when full, clients under their limit are forgotten, a client that reached its limit never is', async (t) => {
  const { addresses } = countingAlone(10)
  consume(addresses, 'limited', 1)
  consume(addresses, 'limited', 1)
  consume(addresses, 'exhausted', 2)
  consume(addresses, 'exhausted', 2)
  consume(addresses, 'under-limit', 5)
  for (let client = 0; client < OTHER_CLIENTS; client++) consume(addresses, `other-${client}`, 5)

  t.equal(consume(addresses, 'limited', 1).count, 2, 'the refused client is still refused')
  t.equal(consume(addresses, 'exhausted', 2).count, 3, 'the client with no budget left is still counted')
  t.equal(consume(addresses, 'under-limit', 5).count, 1, 'the client under its limit was forgotten: the map stayed bounded')
})
