import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { hasScope, mayReadTenant, Scopes } from '../auth/caller.js'
import type { LaneSlot, RequestLane } from '../http/http-server.js'
import { REQUEST_ID_HEADER, requestIdOf } from '../logging/request-logging.js'
import { tracingEnabled } from '../observability/tracing.js'
import {
  listAnswerHeaders,
  PHONE_LIST_CONTENT_TYPE,
  TENANT_PHONES_ROUTE,
  APPKEY_FORMAT,
} from '../routes/tenant-phones.js'
import { markAdmitted } from './rate-limit.js'

export interface HitLanePluginOptions {
  slot: LaneSlot
}

const PATH_PREFIX = '/tenants/'
const PATH_SUFFIX = '/phones'
const GET = 'GET'
const OK = 200

/**
 * The hit lane: a fresh list this process holds, asked for by a caller it has verified before, is
 * answered before Fastify routes the request, which costs more than the rest of such a hit (measured:
 * see README, Performance). It answers exactly what the route answers (same headers, body, access line,
 * metrics; test/plugins/hit-lane.test.ts compares both), and only that: whatever else a request is
 * (another path or method, unknown or new credentials, a tenant it may not read, a caller at its
 * limit, a conditional or cross-origin request, a list not fresh in memory, a server shutting down),
 * the lane writes nothing and Fastify's route answers it, guard first. A request is counted once by
 * the rate limiter either way. Not installed when authentication is off or traces are on (the lane
 * has no request span).
 */
export const hitLanePlugin = fp<HitLanePluginOptions>(async function hitLane (app, options) {
  if (app.knownCaller === undefined || tracingEnabled()) return
  const lane = createHitLane(app)
  options.slot.reportError = (error) => { app.log.error({ err: error }, 'the hit lane failed; the request went to the route') }
  app.addHook('onReady', async () => { options.slot.lane = lane })
  app.addHook('preClose', async () => { options.slot.lane = undefined })
}, { name: 'hit-lane', dependencies: ['access', 'rate-limit', 'phone-list', 'answer-stamp', 'metrics'] })

function createHitLane (app: FastifyInstance): RequestLane {
  const knownCaller = app.knownCaller as NonNullable<FastifyInstance['knownCaller']>
  const { phoneListService, metrics, accessLog } = app
  const appkeyOf = appkeyParser()

  return function answerHit (request: IncomingMessage, response: ServerResponse): boolean {
    const startedAt = performance.now()
    const headers = request.headers
    if (request.method !== GET || !isPlain(headers) || app.isShuttingDown()) return false
    const appkey = appkeyOf(request.url)
    if (appkey === undefined) return false
    const caller = knownCaller(headers)
    if (caller === undefined || !hasScope(caller, Scopes.phonesRead) || !mayReadTenant(caller, appkey)) return false
    const limit = app.admitCaller(caller, Date.now())
    if (limit === undefined) return false
    const answer = phoneListService.freshFromMemory(appkey)
    if (answer === undefined) {
      // Counted already: the guard sends the fields of this count instead of counting again.
      markAdmitted(request, limit)
      return false
    }
    const requestId = requestIdOf(request)
    const head: Array<string | number> = [REQUEST_ID_HEADER, requestId, 'x-content-type-options', 'nosniff']
    if (app.isLastAnswerOn(request.socket)) head.push('connection', 'close')
    head.push('ratelimit-policy', limit.policy, 'ratelimit', limit.limit, ...listAnswerHeaders(answer),
      'content-type', PHONE_LIST_CONTENT_TYPE, 'content-length', answer.entry.bytes.length)
    // Node takes a flat [name, value, ...] list as it comes; its typings know only the tuple form.
    response.writeHead(OK, head as unknown as string[])
    response.end(answer.entry.bytes)
    const elapsedMs = performance.now() - startedAt
    metrics.observeAnswer(TENANT_PHONES_ROUTE, GET, OK, elapsedMs / 1000)
    accessLog.answered({
      requestId, method: GET, url: request.url as string, statusCode: OK, responseTimeMs: elapsedMs, cache: answer.cache, callerId: caller.id,
    })
    return true
  }
}

/**
 * What the lane leaves to Fastify by the headers alone: no Host (a 400), a body on a GET, a
 * cross-origin request (CORS answers it), a conditional one (a 304).
 */
function isPlain (headers: IncomingHttpHeaders): boolean {
  return headers.host !== undefined && headers.origin === undefined && headers['if-none-match'] === undefined &&
    headers['content-length'] === undefined && headers['transfer-encoding'] === undefined
}

// The appkey of `/tenants/<appkey>/phones` as the route's schema accepts it, with no query; else undefined.
function appkeyParser (): (url: string | undefined) => string | undefined {
  const { pattern, minLength, maxLength } = APPKEY_FORMAT
  const format = new RegExp(pattern)
  return (url) => {
    if (url === undefined || !url.startsWith(PATH_PREFIX) || !url.endsWith(PATH_SUFFIX)) return undefined
    const appkey = url.slice(PATH_PREFIX.length, url.length - PATH_SUFFIX.length)
    return appkey.length >= minLength && appkey.length <= maxLength && format.test(appkey) ? appkey : undefined
  }
}
