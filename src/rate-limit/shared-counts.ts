import { Cluster, type Result } from 'ioredis'
import type { RedisClient } from '../redis/redis-client.js'
import type { RedisHealthGate } from '../redis/redis-health-gate.js'
import type { WindowCount, WindowCounter } from './window-counters.js'

// Adds each instance's requests to the shared counts of many clients at once and answers, per client,
// the total and the milliseconds left in its window. KEYS[i] is a client's counter, ARGV[2i-1] what this
// instance adds to it, ARGV[2i] its window. The first count of a window starts it (as does a counter
// left without expiry, which a manual write could make: it would otherwise limit forever).
const ADD_COUNTS_SCRIPT = `
local answers = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCRBY', key, ARGV[2 * i - 1])
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    local window = tonumber(ARGV[2 * i])
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  answers[2 * i - 1] = count
  answers[2 * i] = ttl
end
return answers`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    addRateLimitCounts (numberOfKeys: number, ...keysThenArguments: Array<string | number>): Result<number[], Context>
  }
}

const COUNTER_KEY = 'rate-limit:v3:'
// Clients per script call: a long script would hold Redis up for every other client of it.
const CLIENTS_PER_SCRIPT = 500
// On a cluster the keys of one script call must share a slot. A hash tag per client would cost a
// command per client and sync; the clients are spread instead over this many tags, so a sync costs
// at most this many calls (more only past CLIENTS_PER_SCRIPT clients in one), spread over the masters.
export const CLUSTER_SLOT_GROUPS = 16

export interface SharedCountsOptions {
  redis: RedisClient
  gate: RedisHealthGate
  keyPrefix: string
  /** Bound of the queue while Redis is away: past it, counters with nothing left to send are dropped from it. */
  maxQueued: number
}

/** One sync's share of a client: what was sent, in which of its windows. */
interface SentCount {
  counter: WindowCounter
  added: number
  generation: number
}

/**
 * The counts every instance shares through Redis. Two ways to use it: `queue` a counter and `sync`
 * every RATE_LIMIT_SYNC_MS (one script call carrying every client counted since, as Kong's rate-limiting
 * `sync_rate` does; on a cluster one per slot group), or `addNow` on every request (exact, one command per request). Either way Redis's
 * total and window become the counter's for the rest of the window. A failed or skipped sync keeps its
 * counts for the next one: a Redis outage never fails a request (nor delays one: while the health gate
 * is closed nothing is sent), and what each instance counted meanwhile reaches Redis once it is back.
 */
export class SharedCounts {
  readonly #redis: RedisClient
  readonly #gate: RedisHealthGate
  readonly #keyPrefix: string
  readonly #slotGroups: number
  readonly #maxQueued: number
  #queue: WindowCounter[] = []
  #syncing: Promise<void> | undefined

  constructor (options: SharedCountsOptions) {
    this.#redis = options.redis
    this.#gate = options.gate
    this.#keyPrefix = options.keyPrefix
    this.#slotGroups = options.redis instanceof Cluster ? CLUSTER_SLOT_GROUPS : 1
    this.#maxQueued = options.maxQueued
    this.#redis.defineCommand('addRateLimitCounts', { lua: ADD_COUNTS_SCRIPT })
  }

  /** Whether Redis is worth a command now (see RedisHealthGate): while not, counts wait here. */
  get ready (): boolean {
    return this.#gate.available
  }

  queue (counter: WindowCounter): void {
    counter.queued = true
    this.#queue.push(counter)
  }

  /** Sends what was counted since the last sync; one at a time, the next tick picks up what this one missed. */
  sync (): Promise<void> {
    if (this.#syncing !== undefined || this.#queue.length === 0) return this.#syncing ?? Promise.resolve()
    if (!this.ready) {
      this.#boundQueue()
      return Promise.resolve()
    }
    const sent = this.#takeQueue()
    this.#syncing = Promise.all(this.#chunksOf(sent).map((chunk) =>
      this.#addCounts(chunk).then(
        (answers) => { adopt(chunk, answers, Date.now()) },
        () => { this.#requeue(chunk) }
      )
    )).then(() => {}).finally(() => { this.#syncing = undefined })
    return this.#syncing
  }

  /**
   * Adds what this instance counted for the client since its last command (this request, and any
   * counted while Redis was away) and answers the shared total, this request included; this
   * instance's own count when Redis fails.
   */
  addNow (counter: WindowCounter): Promise<WindowCount> {
    const sent = [{ counter, added: counter.unsynced, generation: counter.generation }]
    const { count: countedHere, windowEndsAtMs } = counter
    counter.unsynced = 0
    return this.#addCounts(sent).then(
      ([total = 0, ttl = 0]) => {
        const nowMs = Date.now()
        adopt(sent, [total, ttl], nowMs)
        return { count: total, windowEndsAtMs: nowMs + ttl }
      },
      () => {
        // Sent again with this client's next request.
        restore(sent)
        return { count: countedHere, windowEndsAtMs }
      }
    )
  }

  /** Waits for a sync under way, then sends what is left (on close). */
  async flush (): Promise<void> {
    await this.#syncing
    await this.sync()
  }

  #takeQueue (): SentCount[] {
    const sent: SentCount[] = []
    for (const counter of this.#queue) {
      counter.queued = false
      // Nothing to send: it was evicted, or its window ended and with it any use of its count.
      if (counter.unsynced === 0) continue
      sent.push({ counter, added: counter.unsynced, generation: counter.generation })
      counter.unsynced = 0
    }
    this.#queue = []
    return sent
  }

  #requeue (sent: SentCount[]): void {
    restore(sent)
    for (const { counter } of sent) {
      if (counter.unsynced > 0 && !counter.queued) this.queue(counter)
    }
  }

  // While Redis is away the queue only grows with new clients; those evicted since have nothing to send.
  #boundQueue (): void {
    if (this.#queue.length <= this.#maxQueued) return
    this.#queue = this.#queue.filter((counter) => {
      counter.queued = counter.unsynced > 0
      return counter.queued
    })
  }

  // One script call: every key in it shares a slot (see CLUSTER_SLOT_GROUPS).
  #addCounts (chunk: SentCount[]): Promise<number[]> {
    const keys = chunk.map(({ counter }) => sharedCountKey(this.#keyPrefix, counter.key, this.#slotGroups))
    const counts = chunk.flatMap(({ counter, added }) => [added, counter.windowMs])
    return this.#gate.run(() => this.#redis.addRateLimitCounts(chunk.length, ...keys, ...counts))
  }

  // The script calls of one sync: by slot group, at most CLIENTS_PER_SCRIPT clients each.
  #chunksOf (sent: SentCount[]): SentCount[][] {
    const groups = new Map<number, SentCount[]>()
    for (const count of sent) {
      const group = slotGroupOf(count.counter.key, this.#slotGroups)
      const members = groups.get(group)
      if (members === undefined) groups.set(group, [count])
      else members.push(count)
    }
    const chunks: SentCount[][] = []
    for (const members of groups.values()) {
      for (let start = 0; start < members.length; start += CLIENTS_PER_SCRIPT) chunks.push(members.slice(start, start + CLIENTS_PER_SCRIPT))
    }
    return chunks
  }
}

// Redis holds the window every instance shares: its total (with what was counted here since the sync
// left) and its end replace this instance's own, unless the client's window changed meanwhile.
function adopt (sent: SentCount[], answers: number[], nowMs: number): void {
  sent.forEach(({ counter, generation }, index) => {
    if (counter.generation !== generation) return
    counter.count = (answers[2 * index] ?? 0) + counter.unsynced
    counter.windowEndsAtMs = nowMs + (answers[2 * index + 1] ?? 0)
  })
}

function restore (sent: SentCount[]): void {
  for (const { counter, added, generation } of sent) {
    if (counter.generation === generation) counter.unsynced += added
  }
}

/**
 * Where Redis holds a client's shared count: a single server under the key it always had, a cluster's
 * with its slot group's hash tag.
 */
export function sharedCountKey (keyPrefix: string, clientKey: string, slotGroups: number): string {
  const tag = slotGroups === 1 ? '' : `{rl${slotGroupOf(clientKey, slotGroups)}}:`
  return `${keyPrefix}${COUNTER_KEY}${tag}${clientKey}`
}

function slotGroupOf (clientKey: string, slotGroups: number): number {
  return slotGroups === 1 ? 0 : fnv1a(clientKey) % slotGroups
}

// 32-bit FNV-1a: cheap and spreads short keys evenly enough over a few groups.
function fnv1a (text: string): number {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}
