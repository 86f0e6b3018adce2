import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { storedPhoneList, type FillLeases, type PhoneListStore, type StoredEntry, type StoredPhoneList } from '../cache/phone-list-store.js'
import { problemStatusOf } from '../errors/nxcloud-problems.js'
import { LogThrottle } from '../logging/log-throttle.js'
import type { NxCloudClient } from '../nxcloud/nxcloud-client.js'
import { NxCloudError } from '../nxcloud/nxcloud-error.js'
import { UpstreamCodes } from '../nxcloud/upstream-codes.js'
import { inSpan, recordInstantSpan, setActiveSpanAttribute, tracingEnabled } from '../observability/tracing.js'
import { normalisePhone } from './normalise-phones.js'
import type { PhoneList } from './phone-schemas.js'

// How often a caller waiting for a peer instance's fill looks at the shared cache again.
const PEER_FILL_POLL_MS = 25
// During a Redis outage every request fails over; one warning per interval says so without flooding.
const CACHE_WARNING_INTERVAL_MS = 10_000
// The cache's name in Cache-Status (RFC 9211).
const CACHE_NAME = 'nxcloud-bff'

/** Where an answer came from, as `X-Cache` tells it and the access log records it. */
export const CacheResults = { hit: 'HIT', miss: 'MISS', stale: 'STALE' } as const
export type CacheResult = typeof CacheResults[keyof typeof CacheResults]

/**
 * What one request found in the cache: a fresh list (hit), a list past its freshness served at once
 * while one refresh replaces it (stale), nothing servable so NxCloud is asked (miss, caching off
 * included), a remembered unknown appkey (negative), or a store that failed (error; NxCloud is asked).
 */
export const CACHE_LOOKUP_RESULTS = ['hit', 'miss', 'stale', 'negative', 'error'] as const
export type CacheLookupResult = typeof CACHE_LOOKUP_RESULTS[number]

/** Told as the service decides, so that metrics (and logs) read the decision, not a header. */
export interface PhoneListEvents {
  /** Once per request that asked the cache (the refresh route does not); on the hit path: keep it cheap. */
  lookup (result: CacheLookupResult): void
}

// The store failed to answer: the lookup goes on as if it held nothing.
const STORE_FAILED = Symbol('store failed')

// The cache lookup's trace span, with what it found (the same results the metrics count).
const CACHE_LOOKUP_SPAN = 'cache.lookup'
const LOOKUP_RESULT = 'cache.result'
const LOOKUP_ATTRIBUTES = Object.fromEntries(CACHE_LOOKUP_RESULTS.map((result) => [result, { [LOOKUP_RESULT]: result }])) as
  Record<CacheLookupResult, { [LOOKUP_RESULT]: CacheLookupResult }>

export interface CachePolicy {
  ttlSeconds: number
  staleWhileRevalidateSeconds: number
  staleIfErrorSeconds: number
  negativeTtlSeconds: number
}

/** Everything the route needs to answer: the list and what to say about where it came from. */
export interface PhoneListAnswer {
  ok: true
  entry: StoredPhoneList
  cache: CacheResult
  ageSeconds: number
  cacheControl: string
  /** RFC 9211 Cache-Status. */
  cacheStatus: string
}

/** A failure, with what the cache has to say about it (an unknown tenant may be a cache hit). */
export interface PhoneListFailure {
  ok: false
  error: unknown
  cache: CacheResult
  cacheStatus: string
}

export type PhoneListOutcome = PhoneListAnswer | PhoneListFailure

export interface PhoneListServiceOptions {
  client: NxCloudClient
  /** Absent when caching is off (`CACHE_TTL_SECONDS=0`). */
  store: PhoneListStore | undefined
  /** Present when instances share the store and so coordinate their fills. */
  fillLeases: FillLeases | undefined
  policy: CachePolicy
  upstreamTimeoutMs: number
  events: PhoneListEvents
}

export interface PhoneListService {
  /** The answer when this process holds a servable list: synchronous, the cache-hit fast path. */
  answerFromMemory (appkey: string, log: FastifyBaseLogger): PhoneListAnswer | undefined
  answer (appkey: string, log: FastifyBaseLogger): Promise<PhoneListOutcome>
  /** Reads NxCloud now, whatever the cache holds, and replaces the shared entry. */
  refresh (appkey: string, log: FastifyBaseLogger): Promise<PhoneListOutcome>
}

interface FillOutcome {
  entry: StoredEntry
  /** Filled by a peer instance while this one waited. */
  byPeer: boolean
}

/**
 * Cache-aside over NxCloud, and the one place that decides what an entry is worth (stores only keep
 * entries): fresh for the TTL; then served at once while one refresh replaces it
 * (stale-while-revalidate); served when NxCloud fails for a reason that is not the tenant's
 * (stale-if-error); an unknown appkey remembered briefly. Fills are coalesced twice: callers in this
 * process share one in-flight fill, and instances sharing Redis let the holder of a short lease fill
 * while the others wait. A failing cache is never the caller's error.
 */
export function createPhoneListService (options: PhoneListServiceOptions): PhoneListService {
  const { client, store, fillLeases, policy, upstreamTimeoutMs, events } = options
  const ttlMs = policy.ttlSeconds * 1000
  const revalidateMs = ttlMs + policy.staleWhileRevalidateSeconds * 1000
  const staleIfErrorMs = ttlMs + policy.staleIfErrorSeconds * 1000
  const retainSeconds = listRetainSecondsOf(policy)
  const cacheControl = store === undefined
    ? 'no-store'
    : `private, max-age=${policy.ttlSeconds}, stale-while-revalidate=${policy.staleWhileRevalidateSeconds}, stale-if-error=${policy.staleIfErrorSeconds}`
  const fillsInFlight = new Map<string, Promise<FillOutcome>>()
  const refreshesInFlight = new Set<string>()
  const logCacheFailure = createCacheFailureLogger()

  const freshLifetimeMs = freshLifetimeMsOf(policy)
  const ageMsOf = (entry: StoredEntry, nowMs: number) => Math.max(0, nowMs - entry.fetchedAtMs)
  const isFresh = (entry: StoredEntry, nowMs: number) => ageMsOf(entry, nowMs) < freshLifetimeMs(entry)

  function answerOf (entry: StoredPhoneList, cache: CacheResult, status: string, nowMs = Date.now()): PhoneListAnswer {
    const ageMs = ageMsOf(entry, nowMs)
    const ageSeconds = Math.floor(ageMs / 1000)
    // Remaining freshness, negative once stale (RFC 9211 §2.4); nothing to say without a cache.
    const ttl = store === undefined ? '' : `; ttl=${Math.floor((ttlMs - ageMs) / 1000)}`
    return { ok: true, entry, cache, ageSeconds, cacheControl, cacheStatus: `${CACHE_NAME}; ${status}${ttl}` }
  }

  function failureOf (error: unknown, cache: CacheResult, status: string): PhoneListFailure {
    return { ok: false, error, cache, cacheStatus: `${CACHE_NAME}; ${status}` }
  }

  function unknownTenantOutcome (entry: StoredEntry & { kind: 'unknown-tenant' }, status: string, cache: CacheResult): PhoneListFailure {
    return failureOf(NxCloudError.ofCode(entry.upstreamCode, entry.message), cache, status)
  }

  // A list the cache holds, served while fresh (hit), or past that within stale-while-revalidate while one
  // refresh replaces it (stale); undefined beyond, for NxCloud to answer. Both paths, memory and store, decide here.
  function servedFromCache (entry: StoredPhoneList, nowMs: number, appkey: string, log: FastifyBaseLogger): PhoneListAnswer | undefined {
    const fresh = freshAnswerOf(entry, nowMs)
    if (fresh !== undefined) return fresh
    if (ageMsOf(entry, nowMs) >= revalidateMs) return undefined
    events.lookup('stale')
    refreshInBackground(appkey, log)
    return answerOf(entry, CacheResults.stale, 'hit; detail=stale-while-revalidate', nowMs)
  }

  function freshAnswerOf (entry: StoredPhoneList, nowMs: number): PhoneListAnswer | undefined {
    if (ageMsOf(entry, nowMs) >= ttlMs) return undefined
    events.lookup('hit')
    return answerOf(entry, CacheResults.hit, 'hit', nowMs)
  }

  function missed (appkey: string, log: FastifyBaseLogger, stale: StoredPhoneList | undefined): Promise<PhoneListOutcome> {
    events.lookup('miss')
    return forward(appkey, log, stale)
  }

  // The store's read, as a span saying what it found when tracing is on.
  function lookup (appkey: string, log: FastifyBaseLogger): Promise<StoredEntry | undefined | typeof STORE_FAILED> {
    if (!tracingEnabled()) return read(appkey, log)
    return inSpan(CACHE_LOOKUP_SPAN, undefined, async () => {
      const entry = await read(appkey, log)
      setActiveSpanAttribute(LOOKUP_RESULT, lookupResultOf(entry, Date.now()))
      return entry
    })
  }

  // What the span says the lookup found: the same results the metrics count (see servedFromCache).
  function lookupResultOf (entry: StoredEntry | undefined | typeof STORE_FAILED, nowMs: number): CacheLookupResult {
    if (entry === STORE_FAILED) return 'error'
    if (entry === undefined) return 'miss'
    if (entry.kind === 'unknown-tenant') return isFresh(entry, nowMs) ? 'negative' : 'miss'
    const ageMs = ageMsOf(entry, nowMs)
    return ageMs < ttlMs ? 'hit' : ageMs < revalidateMs ? 'stale' : 'miss'
  }

  async function read (appkey: string, log: FastifyBaseLogger): Promise<StoredEntry | undefined | typeof STORE_FAILED> {
    if (store === undefined) return undefined
    try {
      return await store.get(appkey)
    } catch (error) {
      logCacheFailure(log, 'get', error)
      return STORE_FAILED
    }
  }

  function write (appkey: string, entry: StoredEntry, seconds: number, log: FastifyBaseLogger): Promise<void> {
    if (store === undefined || seconds === 0) return Promise.resolve()
    return store.set(appkey, entry, seconds).catch((error: unknown) => { logCacheFailure(log, 'set', error) })
  }

  // NxCloud's answer, stored; its word on the tenant (9008, 9010) drops the entry, and an unknown appkey is remembered.
  async function fetchAndStore (appkey: string, log: FastifyBaseLogger): Promise<StoredPhoneList> {
    let phones
    try {
      phones = await client.fetchPhoneList(appkey, log)
    } catch (error) {
      if (!(error instanceof NxCloudError) || !error.aboutTheTenant) throw error
      await store?.delete(appkey).catch((failure: unknown) => { logCacheFailure(log, 'delete', failure) })
      if (error.code !== UpstreamCodes.appkeyNotFound) throw error
      const unknown: StoredEntry = { kind: 'unknown-tenant', fetchedAtMs: Date.now(), upstreamCode: error.code, message: error.upstreamMessage }
      await write(appkey, unknown, policy.negativeTtlSeconds, log)
      throw error
    }
    const entry = serialise(appkey, phones.map(normalisePhone), Date.now())
    await write(appkey, entry, retainSeconds, log)
    return entry
  }

  async function fill (appkey: string, log: FastifyBaseLogger, waitForPeer: boolean): Promise<FillOutcome | undefined> {
    // The lease outlives the upstream budget, so a crashed holder blocks its peers at most that long.
    const lease = await fillLeases?.acquire(appkey, upstreamTimeoutMs + PEER_FILL_POLL_MS)
      .catch((error: unknown) => { logCacheFailure(log, 'lease', error); return undefined })
    if (lease?.acquired === false && fillLeases !== undefined) {
      if (!waitForPeer) return undefined
      const filledByPeer = await waitForPeerFill(fillLeases, appkey, log)
      if (filledByPeer !== undefined) return { entry: filledByPeer, byPeer: true }
    }
    try {
      // A peer may have filled it and let its lease go between our read and our lease (its change not yet
      // heard here): what it stored is read again before NxCloud is asked a second time.
      const filledByPeer = lease?.acquired === true ? await freshStoredEntry(appkey, log) : undefined
      if (filledByPeer !== undefined) return { entry: filledByPeer, byPeer: true }
      return { entry: await fetchAndStore(appkey, log), byPeer: false }
    } finally {
      await lease?.release().catch((error: unknown) => logCacheFailure(log, 'release', error))
    }
  }

  async function waitForPeerFill (leases: FillLeases, appkey: string, log: FastifyBaseLogger): Promise<StoredEntry | undefined> {
    const deadline = Date.now() + upstreamTimeoutMs
    while (Date.now() < deadline) {
      await sleep(PEER_FILL_POLL_MS)
      const entry = await freshStoredEntry(appkey, log)
      if (entry !== undefined) return entry
      // The peer failed (failures are not cached) or its lease lapsed: stop waiting and ask ourselves.
      const peerStillFilling = await leases.isHeld(appkey).catch(() => false)
      if (!peerStillFilling) return undefined
    }
    return undefined
  }

  async function freshStoredEntry (appkey: string, log: FastifyBaseLogger): Promise<StoredEntry | undefined> {
    const entry = await read(appkey, log)
    return entry !== undefined && entry !== STORE_FAILED && isFresh(entry, Date.now()) ? entry : undefined
  }

  // One fill per tenant in this process: callers that miss together share it ("collapsed").
  async function coalescedFill (appkey: string, log: FastifyBaseLogger): Promise<FillOutcome & { collapsed: boolean }> {
    const inFlight = fillsInFlight.get(appkey)
    if (inFlight !== undefined) return { ...await inFlight, collapsed: true }
    const filling = fill(appkey, log, true) as Promise<FillOutcome>
    fillsInFlight.set(appkey, filling)
    try {
      const outcome = await filling
      return { ...outcome, collapsed: outcome.byPeer }
    } finally {
      fillsInFlight.delete(appkey)
    }
  }

  // Stale-while-revalidate: one refresh per tenant, across instances (a peer's lease means it is on it).
  function refreshInBackground (appkey: string, log: FastifyBaseLogger): void {
    if (refreshesInFlight.has(appkey)) return
    refreshesInFlight.add(appkey)
    // A failure was logged with the call; the stale entry stays until its window lapses.
    fill(appkey, log, false).catch(() => {}).finally(() => { refreshesInFlight.delete(appkey) })
  }

  async function forward (appkey: string, log: FastifyBaseLogger, stale: StoredPhoneList | undefined): Promise<PhoneListOutcome> {
    const reason = store === undefined ? 'fwd=bypass' : stale === undefined ? 'fwd=miss' : 'fwd=stale'
    try {
      const { entry, byPeer, collapsed } = await coalescedFill(appkey, log)
      const stored = byPeer || store === undefined ? '' : '; stored'
      const marks = `${reason}; fwd-status=${entry.kind === 'list' ? 200 : 404}${stored}${collapsed ? '; collapsed' : ''}`
      if (entry.kind === 'unknown-tenant') return unknownTenantOutcome(entry, marks, byPeer ? CacheResults.hit : CacheResults.miss)
      return answerOf(entry, byPeer ? CacheResults.hit : CacheResults.miss, marks)
    } catch (error) {
      const status = problemStatusOf(error)
      const nowMs = Date.now()
      // A failure that says nothing about the tenant's list: the last list serves its callers better.
      if (stale !== undefined && error instanceof NxCloudError && !error.aboutTheRequest && ageMsOf(stale, nowMs) < staleIfErrorMs) {
        log.warn({ cache: { staleIfError: true, ageSeconds: Math.floor(ageMsOf(stale, nowMs) / 1000) } }, 'NxCloud failed; serving the last list')
        return answerOf(stale, CacheResults.stale, `${reason}; fwd-status=${status}; detail=stale-if-error`, nowMs)
      }
      return failureOf(error, CacheResults.miss, `${reason}; fwd-status=${status}`)
    }
  }

  return {
    answerFromMemory (appkey, log) {
      const entry = store?.peek?.(appkey)
      if (entry?.kind !== 'list') return undefined
      const served = servedFromCache(entry, Date.now(), appkey, log)
      if (served !== undefined) recordInstantSpan(CACHE_LOOKUP_SPAN, served.cache === CacheResults.hit ? LOOKUP_ATTRIBUTES.hit : LOOKUP_ATTRIBUTES.stale)
      return served
    },
    async answer (appkey, log) {
      const entry = await lookup(appkey, log)
      if (entry === STORE_FAILED) {
        events.lookup('error')
        return await forward(appkey, log, undefined)
      }
      const nowMs = Date.now()
      if (entry?.kind === 'list') return servedFromCache(entry, nowMs, appkey, log) ?? await missed(appkey, log, entry)
      if (entry !== undefined && isFresh(entry, nowMs)) {
        events.lookup('negative')
        return unknownTenantOutcome(entry, 'hit; detail=negative', CacheResults.hit)
      }
      return await missed(appkey, log, undefined)
    },
    async refresh (appkey, log) {
      try {
        const entry = await fetchAndStore(appkey, log)
        return answerOf(entry, CacheResults.miss, `fwd=request; fwd-status=200${store === undefined ? '' : '; stored'}`)
      } catch (error) {
        return failureOf(error, CacheResults.miss, `fwd=request; fwd-status=${problemStatusOf(error)}`)
      }
    },
  }
}

/** How long an entry is fresh by the policy: the rule the service answers by and the memory tier keeps by. */
export function freshLifetimeMsOf (policy: CachePolicy): (entry: StoredEntry) => number {
  const listMs = policy.ttlSeconds * 1000
  const unknownTenantMs = policy.negativeTtlSeconds * 1000
  return (entry) => entry.kind === 'list' ? listMs : unknownTenantMs
}

// A list is kept for its freshness and the longer of its stale windows.
function listRetainSecondsOf (policy: CachePolicy): number {
  return policy.ttlSeconds + Math.max(policy.staleWhileRevalidateSeconds, policy.staleIfErrorSeconds)
}

/** How long the memory tier may still hand an entry over when the shared tier fails: as long as the shared tier keeps it. */
export function heldLifetimeMsOf (policy: CachePolicy): (entry: StoredEntry) => number {
  const listMs = listRetainSecondsOf(policy) * 1000
  const unknownTenantMs = policy.negativeTtlSeconds * 1000
  return (entry) => entry.kind === 'list' ? listMs : unknownTenantMs
}

function serialise (appkey: string, phones: PhoneList['phones'], fetchedAtMs: number): StoredPhoneList {
  const list: PhoneList = { appkey, phones, fetchedAt: new Date(fetchedAtMs).toISOString() }
  const body = JSON.stringify(list)
  return storedPhoneList(body, strongEtagOf(body), fetchedAtMs)
}

// The list's bytes determine the tag, so every instance tags the same list alike (RFC 9110 §8.8.3).
function strongEtagOf (body: string): string {
  return `"${createHash('sha256').update(body, 'utf8').digest('base64url').slice(0, 32)}"`
}

type CacheFailureLogger = (log: FastifyBaseLogger, operation: string, error: unknown) => void

function createCacheFailureLogger (): CacheFailureLogger {
  const warnings = new LogThrottle(1, CACHE_WARNING_INTERVAL_MS)
  return (log, operation, error) => {
    log[warnings.admit() ? 'warn' : 'debug']({ cache: { operation }, err: error }, 'cache unavailable, answering from NxCloud')
  }
}
