import t from 'tap'
import { ENTRY_OVERHEAD_BYTES, createMemoryPhoneListStore } from '../../src/cache/memory-phone-list-store.js'
import { storedPhoneList, type StoredPhoneList } from '../../src/cache/phone-list-store.js'

const KIB = 1024
const LONG_RETENTION_MS = 3_600_000
// A bound that a few dozen lists fill, so every set past that evicts.
const SMALL_BOUND_BYTES = 128 * KIB
const TENANTS_PAST_THE_BOUND = 2_000
// How the estimate compares with the heap the entries take is measured, not asserted: a heap figure
// depends on the run (test/bench/edge-figures.ts prints it as memoryTierHeap).

function listOf (appkey: string, body: string): StoredPhoneList {
  return storedPhoneList(body, `"${appkey.padEnd(32, 'x')}"`, Date.now())
}

// Distinct strings per tenant, as lists read from NxCloud or Redis are.
function bodyOf (appkey: string, characters: number, filler = 'a'): string {
  return JSON.stringify({ appkey, phones: filler.repeat(Math.max(0, characters - appkey.length - 24)) })
}

t.test('an entry counts its strings, one byte a character for ASCII and two otherwise, its UTF-8 bytes, plus a fixed overhead', async (t) => {
  const store = createMemoryPhoneListStore(SMALL_BOUND_BYTES)
  const ascii = listOf('shop', bodyOf('shop', 500))
  store.keepUntil('shop', ascii, Date.now() + LONG_RETENTION_MS)
  const asciiBytes = ENTRY_OVERHEAD_BYTES + 'shop'.length + ascii.body.length + ascii.bytes.length + ascii.etag.length
  t.equal(store.bytes, asciiBytes)

  const wide = listOf('bank', bodyOf('bank', 500, '牛'))
  store.keepUntil('bank', wide, Date.now() + LONG_RETENTION_MS)
  t.equal(store.bytes, asciiBytes + ENTRY_OVERHEAD_BYTES + 'bank'.length + wide.body.length * 2 + wide.bytes.length + wide.etag.length)

  await store.delete('shop')
  store.clear()
  t.equal(store.bytes, 0)
  t.equal(store.size, 0)
})

t.test('the bytes held never pass the bound, however many tenants come, and the least recently used go first', async (t) => {
  const store = createMemoryPhoneListStore(SMALL_BOUND_BYTES)
  const kept = 'kept-by-use'
  store.keepUntil(kept, listOf(kept, bodyOf(kept, 1_000)), Date.now() + LONG_RETENTION_MS)
  let largest = 0
  for (let index = 0; index < TENANTS_PAST_THE_BOUND; index++) {
    const appkey = `tenant-${index}`
    // Sizes from 100 to 3,000 characters, every seventh list with wide characters.
    const body = bodyOf(appkey, 100 + (index * 997) % 2_900, index % 7 === 0 ? 'é牛' : 'a')
    store.keepUntil(appkey, listOf(appkey, body), Date.now() + LONG_RETENTION_MS)
    largest = Math.max(largest, store.bytes)
    if (index % 10 === 0) t.ok(store.peek(kept), `the tenant read every ten sets is still held after ${index} sets`)
  }
  t.ok(largest <= SMALL_BOUND_BYTES, `at most ${SMALL_BOUND_BYTES} bytes held (largest seen ${largest})`)
  t.ok(store.bytes > SMALL_BOUND_BYTES / 2, `the bound is used, not wasted (${store.bytes} bytes)`)
  const last = `tenant-${TENANTS_PAST_THE_BOUND - 1}`
  t.ok(store.peek(last), 'the newest tenant is held')
  t.equal(store.peek('tenant-0'), undefined, 'the oldest tenant, never read again, is gone')
  t.ok(store.size < TENANTS_PAST_THE_BOUND / 10, `a few dozen lists held (${store.size})`)
})

t.test('a list larger than the whole bound is not held, and takes the place of no older one', async (t) => {
  const store = createMemoryPhoneListStore(SMALL_BOUND_BYTES)
  store.keepUntil('shop', listOf('shop', bodyOf('shop', 500)), Date.now() + LONG_RETENTION_MS)
  store.keepUntil('shop', listOf('shop', bodyOf('shop', SMALL_BOUND_BYTES)), Date.now() + LONG_RETENTION_MS)
  t.equal(store.peek('shop'), undefined, 'neither the new list nor the one it replaces')
  t.equal(store.bytes, 0)
})

t.test('an entry is dropped once its retention has passed', async (t) => {
  const store = createMemoryPhoneListStore(SMALL_BOUND_BYTES)
  store.keepUntil('past', listOf('past', bodyOf('past', 100)), Date.now() - 1)
  await store.set('present', listOf('present', bodyOf('present', 100)), 60)
  t.equal(store.peek('past'), undefined)
  t.ok(await store.get('present'))
  t.equal(store.size, 1, 'the expired entry left when it was read')
})

t.test('a cached list\'s bytes are its own: no shared pool chunk outlives the entries evicted beside it', async (t) => {
  const kept = storedPhoneList('{"phones":[]}', '"tag"', Date.now())
  t.equal(kept.bytes.byteOffset, 0, 'the bytes start their own buffer')
  t.equal(kept.bytes.buffer.byteLength, kept.bytes.length, 'and the buffer holds nothing else')
  t.equal(kept.bytes.toString('utf8'), kept.body)
})
