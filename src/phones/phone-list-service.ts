import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { CachedPhoneList, PhoneListCache } from '../cache/phone-list-cache.js'
import type { NxCloudClient } from '../nxcloud/nxcloud-client.js'
import { normalisePhone } from './normalise-phones.js'
import type { PhoneList } from './phone-schemas.js'

// How often a caller waiting for a peer instance's fill looks at the shared cache again.
const PEER_FILL_POLL_MS = 25
// During a Redis outage every request fails over; one warning per interval says so without flooding.
const CACHE_WARNING_INTERVAL_MS = 10_000

export type CacheResult = 'HIT' | 'MISS'

export interface PhoneListAnswer extends CachedPhoneList {
  cache: CacheResult
}

export interface PhoneListServiceOptions {
  client: NxCloudClient
  /** Absent when caching is off (`CACHE_TTL_SECONDS=0`). */
  cache: PhoneListCache | undefined
  ttlSeconds: number
  upstreamTimeoutMs: number
}

export interface PhoneListService {
  /** A fresh entry this process holds, answered synchronously: the cache-hit fast path. */
  peekFresh (appkey: string): CachedPhoneList | undefined
  getPhoneList (appkey: string, log: FastifyBaseLogger): Promise<PhoneListAnswer>
}

/**
 * Cache-aside over NxCloud with fills coalesced twice: callers in this process share one in-flight
 * fill, and instances sharing Redis let the holder of a short lease fill while the others wait.
 * A failing cache is never the caller's error: it is logged and the upstream answers instead.
 */
export function createPhoneListService (options: PhoneListServiceOptions): PhoneListService {
  const { client, cache, ttlSeconds, upstreamTimeoutMs } = options
  const fillsInFlight = new Map<string, Promise<CachedPhoneList>>()
  const logCacheFailure = createCacheFailureLogger()

  async function fetchAndCache (appkey: string, log: FastifyBaseLogger): Promise<CachedPhoneList> {
    const phones = await client.fetchPhoneList(appkey, log)
    const entry = serialise(appkey, phones.map(normalisePhone), Date.now())
    if (cache !== undefined) {
      await cache.set(appkey, entry, ttlSeconds).catch((error: unknown) => logCacheFailure(log, 'set', error))
    }
    return entry
  }

  async function fill (appkey: string, log: FastifyBaseLogger): Promise<PhoneListAnswer> {
    if (cache === undefined) return { ...await fetchAndCache(appkey, log), cache: 'MISS' }
    // The lease outlives the upstream budget, so a crashed holder blocks its peers at most that long.
    const lease = await cache.acquireFillLease(appkey, upstreamTimeoutMs + PEER_FILL_POLL_MS)
      .catch((error: unknown) => { logCacheFailure(log, 'lease', error); return undefined })
    if (lease?.acquired === false) {
      const filledByPeer = await waitForPeerFill(cache, appkey, upstreamTimeoutMs, log, logCacheFailure)
      if (filledByPeer !== undefined) return { ...filledByPeer, cache: 'HIT' }
    }
    try {
      return { ...await fetchAndCache(appkey, log), cache: 'MISS' }
    } finally {
      await lease?.release().catch((error: unknown) => logCacheFailure(log, 'release', error))
    }
  }

  return {
    peekFresh: (appkey) => cache?.peek(appkey),
    async getPhoneList (appkey, log) {
      const cached = await readCache(cache, appkey, log, logCacheFailure)
      if (cached !== undefined) return { ...cached, cache: 'HIT' }

      const inFlight = fillsInFlight.get(appkey)
      if (inFlight !== undefined) return { ...await inFlight, cache: 'MISS' }

      const filling = fill(appkey, log)
      fillsInFlight.set(appkey, filling)
      try {
        return await filling
      } finally {
        fillsInFlight.delete(appkey)
      }
    },
  }
}

type CacheFailureLogger = (log: FastifyBaseLogger, operation: string, error: unknown) => void

async function readCache (
  cache: PhoneListCache | undefined,
  appkey: string,
  log: FastifyBaseLogger,
  logCacheFailure: CacheFailureLogger
): Promise<CachedPhoneList | undefined> {
  if (cache === undefined) return undefined
  try {
    return await cache.get(appkey)
  } catch (error) {
    logCacheFailure(log, 'get', error)
    return undefined
  }
}

async function waitForPeerFill (
  cache: PhoneListCache,
  appkey: string,
  maxWaitMs: number,
  log: FastifyBaseLogger,
  logCacheFailure: CacheFailureLogger
): Promise<CachedPhoneList | undefined> {
  const deadline = Date.now() + maxWaitMs
  while (Date.now() < deadline) {
    await sleep(PEER_FILL_POLL_MS)
    const entry = await readCache(cache, appkey, log, logCacheFailure)
    if (entry !== undefined) return entry
    // The peer failed (failures are not cached) or its lease lapsed: stop waiting and ask ourselves.
    const peerStillFilling = await cache.isFillLeaseHeld(appkey).catch(() => false)
    if (!peerStillFilling) return undefined
  }
  return undefined
}

function serialise (appkey: string, phones: PhoneList['phones'], fetchedAtMs: number): CachedPhoneList {
  const list: PhoneList = { appkey, phones, fetchedAt: new Date(fetchedAtMs).toISOString() }
  return { body: JSON.stringify(list), fetchedAtMs }
}

function createCacheFailureLogger (): CacheFailureLogger {
  let lastWarningAt = Number.NEGATIVE_INFINITY
  return (log, operation, error) => {
    const now = Date.now()
    const level = now - lastWarningAt >= CACHE_WARNING_INTERVAL_MS ? 'warn' : 'debug'
    if (level === 'warn') lastWarningAt = now
    log[level]({ cache: { operation }, err: error }, 'cache unavailable, answering from NxCloud')
  }
}
