import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { FillLeases, PhoneListStore, StoredPhoneList } from '../cache/phone-list-store.js'
import type { NxCloudClient } from '../nxcloud/nxcloud-client.js'
import { normalisePhone } from './normalise-phones.js'
import type { PhoneList } from './phone-schemas.js'

// How often a caller waiting for a peer instance's fill looks at the shared cache again.
const PEER_FILL_POLL_MS = 25
// During a Redis outage every request fails over; one warning per interval says so without flooding.
const CACHE_WARNING_INTERVAL_MS = 10_000

/** Where an answer came from, as `X-Cache` tells it and the access log records it. */
export const CacheResults = { hit: 'HIT', miss: 'MISS' } as const
export type CacheResult = typeof CacheResults[keyof typeof CacheResults]

/** Everything the route needs to answer: the entry and what to say about its freshness. */
export interface PhoneListAnswer {
  entry: StoredPhoneList
  cache: CacheResult
  ageSeconds: number
  /** Seconds the answer stays fresh for its caller; undefined when caching is off (`no-store`). */
  maxAgeSeconds: number | undefined
}

interface FillOutcome {
  entry: StoredPhoneList
  cache: CacheResult
}

export interface PhoneListServiceOptions {
  client: NxCloudClient
  /** Absent when caching is off (`CACHE_TTL_SECONDS=0`). */
  store: PhoneListStore | undefined
  /** Present when instances share the store and so coordinate their fills. */
  fillLeases: FillLeases | undefined
  ttlSeconds: number
  upstreamTimeoutMs: number
}

export interface PhoneListService {
  /** The answer when this process holds a fresh entry: synchronous, the cache-hit fast path. */
  answerFromMemory (appkey: string): PhoneListAnswer | undefined
  answer (appkey: string, log: FastifyBaseLogger): Promise<PhoneListAnswer>
}

/**
 * Cache-aside over NxCloud, and the one place that decides whether an entry is fresh (from its
 * `fetchedAtMs`; stores only keep entries). Fills are coalesced twice: callers in this process share
 * one in-flight fill, and instances sharing Redis let the holder of a short lease fill while the
 * others wait. A failing cache is never the caller's error: it is logged and NxCloud answers instead.
 */
export function createPhoneListService (options: PhoneListServiceOptions): PhoneListService {
  const { client, store, fillLeases, ttlSeconds, upstreamTimeoutMs } = options
  const ttlMs = ttlSeconds * 1000
  const fillsInFlight = new Map<string, Promise<FillOutcome>>()
  const logCacheFailure = createCacheFailureLogger()

  const isFresh = (entry: StoredPhoneList, nowMs: number) => nowMs - entry.fetchedAtMs < ttlMs

  function answerOf (entry: StoredPhoneList, cache: CacheResult, nowMs = Date.now()): PhoneListAnswer {
    const ageSeconds = Math.max(0, Math.floor((nowMs - entry.fetchedAtMs) / 1000))
    const maxAgeSeconds = store === undefined ? undefined : Math.max(0, ttlSeconds - ageSeconds)
    return { entry, cache, ageSeconds, maxAgeSeconds }
  }

  async function readFresh (appkey: string, log: FastifyBaseLogger): Promise<StoredPhoneList | undefined> {
    if (store === undefined) return undefined
    try {
      const entry = await store.get(appkey)
      return entry !== undefined && isFresh(entry, Date.now()) ? entry : undefined
    } catch (error) {
      logCacheFailure(log, 'get', error)
      return undefined
    }
  }

  async function fetchAndStore (appkey: string, log: FastifyBaseLogger): Promise<StoredPhoneList> {
    const phones = await client.fetchPhoneList(appkey, log)
    const entry = serialise(appkey, phones.map(normalisePhone), Date.now())
    if (store !== undefined) {
      await store.set(appkey, entry, ttlSeconds).catch((error: unknown) => logCacheFailure(log, 'set', error))
    }
    return entry
  }

  async function fill (appkey: string, log: FastifyBaseLogger): Promise<FillOutcome> {
    // The lease outlives the upstream budget, so a crashed holder blocks its peers at most that long.
    const lease = await fillLeases?.acquire(appkey, upstreamTimeoutMs + PEER_FILL_POLL_MS)
      .catch((error: unknown) => { logCacheFailure(log, 'lease', error); return undefined })
    if (lease?.acquired === false && fillLeases !== undefined) {
      const filledByPeer = await waitForPeerFill(fillLeases, appkey, log)
      if (filledByPeer !== undefined) return { entry: filledByPeer, cache: CacheResults.hit }
    }
    try {
      return { entry: await fetchAndStore(appkey, log), cache: CacheResults.miss }
    } finally {
      await lease?.release().catch((error: unknown) => logCacheFailure(log, 'release', error))
    }
  }

  async function waitForPeerFill (leases: FillLeases, appkey: string, log: FastifyBaseLogger): Promise<StoredPhoneList | undefined> {
    const deadline = Date.now() + upstreamTimeoutMs
    while (Date.now() < deadline) {
      await sleep(PEER_FILL_POLL_MS)
      const entry = await readFresh(appkey, log)
      if (entry !== undefined) return entry
      // The peer failed (failures are not cached) or its lease lapsed: stop waiting and ask ourselves.
      const peerStillFilling = await leases.isHeld(appkey).catch(() => false)
      if (!peerStillFilling) return undefined
    }
    return undefined
  }

  // Callers in this process that miss together share one fill; all but the first count as misses
  // too, since their answer was not in the cache when they asked.
  async function coalescedFill (appkey: string, log: FastifyBaseLogger): Promise<PhoneListAnswer> {
    const inFlight = fillsInFlight.get(appkey)
    if (inFlight !== undefined) return answerOf((await inFlight).entry, CacheResults.miss)
    const filling = fill(appkey, log)
    fillsInFlight.set(appkey, filling)
    try {
      const { entry, cache } = await filling
      return answerOf(entry, cache)
    } finally {
      fillsInFlight.delete(appkey)
    }
  }

  return {
    answerFromMemory (appkey) {
      const entry = store?.peek?.(appkey)
      if (entry === undefined) return undefined
      const nowMs = Date.now()
      return isFresh(entry, nowMs) ? answerOf(entry, CacheResults.hit, nowMs) : undefined
    },
    async answer (appkey, log) {
      const cached = await readFresh(appkey, log)
      if (cached !== undefined) return answerOf(cached, CacheResults.hit)
      return await coalescedFill(appkey, log)
    },
  }
}

function serialise (appkey: string, phones: PhoneList['phones'], fetchedAtMs: number): StoredPhoneList {
  const list: PhoneList = { appkey, phones, fetchedAt: new Date(fetchedAtMs).toISOString() }
  const body = JSON.stringify(list)
  return { body, etag: strongEtagOf(body), fetchedAtMs }
}

// The list's bytes determine the tag, so every instance tags the same list alike (RFC 9110 §8.8.3).
function strongEtagOf (body: string): string {
  return `"${createHash('sha256').update(body, 'utf8').digest('base64url').slice(0, 32)}"`
}

type CacheFailureLogger = (log: FastifyBaseLogger, operation: string, error: unknown) => void

function createCacheFailureLogger (): CacheFailureLogger {
  let lastWarningAt = Number.NEGATIVE_INFINITY
  return (log, operation, error) => {
    const now = Date.now()
    const level = now - lastWarningAt >= CACHE_WARNING_INTERVAL_MS ? 'warn' : 'debug'
    if (level === 'warn') lastWarningAt = now
    log[level]({ cache: { operation }, err: error }, 'cache unavailable, answering from NxCloud')
  }
}
