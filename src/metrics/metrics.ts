import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RedisHealthGate } from '../redis/redis-health-gate.js'
import type { AuthenticationFailureReason } from '../auth/caller.js'
import type { NxCloudCallObserver } from '../nxcloud/nxcloud-client.js'
import { isDocumentedCode } from '../nxcloud/upstream-codes.js'
import type { BreakerState, UpstreamLoad } from '../nxcloud/upstream-protection.js'
import { CACHE_LOOKUP_RESULTS, type CacheLookupResult, type PhoneListEvents } from '../phones/phone-list-service.js'
import { changeFeedListeningGauge } from './change-feed-gauge.js'

const PREFIX = 'nxcloud_bff_'
// Requests no route matched (404, 405): one label value, whatever path was asked for.
const UNMATCHED_ROUTE = 'unmatched'
// Methods beyond these are one label value, so a client cannot invent series.
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const OTHER_METHOD = 'OTHER'
// NxCloud answered no code (a transport failure, a refused call), or one it does not document.
const NO_CODE = 'none'
const UNDOCUMENTED_CODE = 'other'
// Seconds; NxCloud answers in tens of milliseconds, and a call may last NXCLOUD_TIMEOUT_MS.
const UPSTREAM_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
// Seconds: a cache hit takes well under a millisecond, a miss up to NXCLOUD_TIMEOUT_MS.
const REQUEST_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const BREAKER_STATE_VALUES: Record<BreakerState, number> = { closed: 0, open: 1, 'half-open': 2 }

/** How a request was limited: by its caller's id, or by its address (no valid credentials). */
export type RateLimitedReason = 'caller' | 'address'
const RATE_LIMITED_REASONS: readonly RateLimitedReason[] = ['caller', 'address']

export interface MetricsOptions {
  /** Redis's health gate, when there is a Redis: whether it is in use is a gauge. */
  redisGate: RedisHealthGate | undefined
}

/**
 * The service's Prometheus series. Label values come from bounded sets only (route patterns, known
 * methods, NxCloud's documented codes, fixed reasons): never an appkey, a caller id or a path.
 */
export interface Metrics {
  /** What a scrape answers: this app's series and the process's. */
  readonly registry: Registry
  /** One completed request (the metrics plugin's onResponse hook). */
  observeRequest (request: FastifyRequest, reply: FastifyReply): void
  /** The phone-list service's cache lookups. */
  readonly phoneListEvents: PhoneListEvents
  /** The NxCloud client's calls. */
  readonly nxcloudCalls: NxCloudCallObserver
  rateLimited (reason: RateLimitedReason): void
  authenticationFailed (reason: AuthenticationFailureReason): void
  /** Where the upstream gauges (in flight, queued, breaker) are read at scrape time. */
  readUpstreamLoadFrom (read: () => UpstreamLoad): void
  /** Where the change feed's state is read at scrape time; only the Redis mode has a feed, and so the gauge. */
  readChangeFeedFrom (isListening: () => boolean): void
}

export function createMetrics (options: MetricsOptions): Metrics {
  const registry = new Registry()
  const registers = [registry]

  const requestDurations = createRequestDurations(registry)

  const phoneListEvents = createLookupCounter(registry)

  const upstreamCalls = new Counter({
    name: `${PREFIX}upstream_calls_total`,
    help: 'NxCloud calls: each attempt that went out, by outcome and NxCloud code; calls refused before any attempt (breaker-open, shed) with code "none".',
    labelNames: ['outcome', 'code'] as const,
    registers,
  })
  const upstreamDurations = new Histogram({
    name: `${PREFIX}upstream_call_duration_seconds`,
    help: 'Duration of each attempt that went out to NxCloud, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: UPSTREAM_DURATION_BUCKETS,
    registers,
  })
  let readUpstreamLoad: (() => UpstreamLoad) | undefined
  const upstreamGauge = (name: string, help: string, valueOf: (load: UpstreamLoad) => number) => new Gauge({
    name: `${PREFIX}${name}`,
    help,
    registers,
    collect () { if (readUpstreamLoad !== undefined) this.set(valueOf(readUpstreamLoad())) },
  })
  upstreamGauge('upstream_calls_in_flight', 'NxCloud calls running now (at most NXCLOUD_MAX_CONCURRENCY).', (load) => load.inFlight)
  upstreamGauge('upstream_calls_queued', 'NxCloud calls waiting for a slot (at most NXCLOUD_MAX_QUEUE).', (load) => load.queued)
  upstreamGauge('upstream_breaker_state', 'The NxCloud circuit breaker: 0 closed, 1 open, 2 half-open.',
    (load) => BREAKER_STATE_VALUES[load.breaker])
  let breakerOpeningsCounted = 0
  registry.registerMetric(new Counter({
    name: `${PREFIX}upstream_breaker_openings_total`,
    help: 'Times the NxCloud circuit breaker opened (a failed half-open probe reopening it included).',
    registers: [],
    collect () {
      const openings = readUpstreamLoad?.().breakerOpenings ?? breakerOpeningsCounted
      this.inc(openings - breakerOpeningsCounted)
      breakerOpeningsCounted = openings
    },
  }))

  const { redisGate } = options
  if (redisGate !== undefined) {
    registry.registerMetric(new Gauge({
      name: `${PREFIX}redis_up`,
      help: '1 while Redis is in use, 0 while its health gate skips it (it failed or froze; the service then runs on in-process state until a probe answers).',
      registers: [],
      collect () { this.set(redisGate.available ? 1 : 0) },
    }))
  }

  const rateLimited = new Counter({
    name: `${PREFIX}rate_limited_total`,
    help: 'Requests refused with 429, by what the limit counted: the caller, or the address (no valid credentials).',
    labelNames: ['reason'] as const,
    registers,
  })
  for (const reason of RATE_LIMITED_REASONS) rateLimited.inc({ reason }, 0)
  const authenticationFailures = new Counter({
    name: `${PREFIX}authentication_failures_total`,
    help: 'Requests refused with 401, by reason (missing-credentials, unknown-api-key, expired, ...).',
    labelNames: ['reason'] as const,
    registers,
  })

  const scraped = Registry.merge([processRegistry(), registry])
  return {
    registry: scraped,
    observeRequest (request, reply) {
      const method = KNOWN_METHODS.has(request.method) ? request.method : OTHER_METHOD
      requestDurations.observe(request.routeOptions.url ?? UNMATCHED_ROUTE, method, reply.statusCode, reply.elapsedTime / 1000)
    },
    phoneListEvents,
    nxcloudCalls: {
      call (outcome, code, seconds) {
        upstreamCalls.inc({ outcome, code: codeLabelOf(code) })
        if (seconds !== undefined) upstreamDurations.observe({ outcome }, seconds)
      },
    },
    rateLimited: (reason) => { rateLimited.inc({ reason }) },
    authenticationFailed: (reason) => { authenticationFailures.inc({ reason }) },
    readUpstreamLoadFrom: (read) => { readUpstreamLoad = read },
    readChangeFeedFrom: (isListening) => { scraped.registerMetric(changeFeedListeningGauge(`${PREFIX}cache_change_feed_listening`, isListening)) },
  }
}

/**
 * Counted on the cache-hit path: a lookup costs one property increment, and the tallies are handed
 * to prom-client when it is scraped (its labelled `inc` hashes the labels on every call).
 */
function createLookupCounter (registry: Registry): PhoneListEvents {
  const tallies = Object.fromEntries(CACHE_LOOKUP_RESULTS.map((result) => [result, 0])) as Record<CacheLookupResult, number>
  registry.registerMetric(new Counter({
    name: `${PREFIX}cache_lookups_total`,
    help: 'Requests that asked the phone-list cache, by result: hit, stale (served while refreshed), miss, negative (a remembered unknown appkey), error (the store failed).',
    labelNames: ['result'] as const,
    registers: [],
    collect () {
      this.reset()
      for (const result of CACHE_LOOKUP_RESULTS) this.inc({ result }, tallies[result])
    },
  }))
  return { lookup (result) { tallies[result]++ } }
}

// Observations a request-duration batch holds before prom-client is handed them.
const REQUEST_DURATION_BATCH = 1024

/**
 * Every answered request's duration, taken in the onResponse hook by storing it, and handed to prom-client's
 * histogram in one loop when the batch is full or the histogram is scraped (its `collect`), so a scrape
 * reads every request answered before it. prom-client's labelled `observe` hashes the labels and formats
 * the bucket's bound as a property key on every call; called in one loop instead of from the hook, it
 * cost a hit about 2 µs less CPU on Node 24 (paired rounds, README, Performance).
 */
function createRequestDurations (registry: Registry): { observe (route: string, method: string, status: number, seconds: number): void } {
  const routes: string[] = []
  const methods: string[] = []
  const statuses = new Uint16Array(REQUEST_DURATION_BATCH)
  const seconds = new Float64Array(REQUEST_DURATION_BATCH)
  let pending = 0
  const histogram = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'Time from a request\'s arrival to its answer, by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: REQUEST_DURATION_BUCKETS,
    registers: [registry],
    collect () { handOver() },
  })
  function handOver (): void {
    for (let i = 0; i < pending; i++) {
      histogram.observe({ route: routes[i] as string, method: methods[i] as string, status: statusLabelOf(statuses[i] as number) }, seconds[i] as number)
    }
    pending = 0
  }
  return {
    observe (route, method, status, duration) {
      routes[pending] = route
      methods[pending] = method
      statuses[pending] = status
      seconds[pending] = duration
      if (++pending === REQUEST_DURATION_BATCH) handOver()
    },
  }
}

// The status as label text, made once per status: prom-client joins label values into a string key on
// every observation, and a number would be formatted each time.
const statusLabels = new Map<number, string>()

function statusLabelOf (status: number): string {
  let label = statusLabels.get(status)
  if (label === undefined) statusLabels.set(status, label = String(status))
  return label
}

function codeLabelOf (code: number | undefined): string {
  if (code === undefined) return NO_CODE
  return isDocumentedCode(code) ? String(code) : UNDOCUMENTED_CODE
}

// The process's own series (CPU, memory, event loop, GC) describe the process, however many apps it
// builds (tests build many): collected once, into a registry every app's scrape includes.
let processMetrics: Registry | undefined

function processRegistry (): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry()
    collectDefaultMetrics({ register: processMetrics })
  }
  return processMetrics
}
