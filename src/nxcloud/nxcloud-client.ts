import { Pool, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import { readCappedText } from '../http/read-capped-body.js'
import { inSpan, setActiveSpanAttribute } from '../observability/tracing.js'
import { NxCloudError, type NxCloudFailureKind } from './nxcloud-error.js'
import { signRequest } from './sign-request.js'
import { isAuthenticationCode, UpstreamCodes } from './upstream-codes.js'
import {
  createUpstreamProtection,
  type BreakerLog,
  type UpstreamLoad,
  type UpstreamProtection,
  type UpstreamProtectionOptions,
} from './upstream-protection.js'
import { UpstreamEnvelopeValidator, UpstreamPhoneListDataValidator, type UpstreamEnvelope, type UpstreamPhone } from './upstream-schemas.js'

export const PHONE_LIST_PATH = '/api/wa/integrator/embedded/register/phoneList'
const WHATSAPP_BIZ_TYPE = '2'
// An envelope listing a tenant's phones is a few KiB; anything far larger is not one.
const MAX_RESPONSE_BYTES = 1024 * 1024
const KEEP_ALIVE_TIMEOUT_MS = 4_000
// One span per attempt, named for the NxCloud action (`nxcloud.phoneList`): the undici request span is
// its child, and a retry shows as a second one.
const CALL_SPAN_PREFIX = 'nxcloud.'

/** One NxCloud operation: where it is posted, the `action` it is signed for, and the shape of its `data`. */
export interface NxCloudEndpoint<Data> {
  path: string
  action: string
  bizType: string
  data: {
    Check (value: unknown): value is Data
    Errors (value: unknown): ReadonlyArray<{ instancePath: string }>
  }
}

// `code 0` with `data: null` is how NxCloud says "no phones".
export const PHONE_LIST_ENDPOINT: NxCloudEndpoint<UpstreamPhone[] | null> = {
  path: PHONE_LIST_PATH,
  action: 'phoneList',
  bizType: WHATSAPP_BIZ_TYPE,
  data: UpstreamPhoneListDataValidator,
}

/** Every integrator operation is about one customer application. */
export interface NxCloudRequestBody {
  appkey: string
  [field: string]: unknown
}

/** How a call ended: `ok`, or the kind of its failure. */
export type NxCloudCallOutcome = 'ok' | NxCloudFailureKind

/** Told of every call as it ends (metrics); synchronous and cheap. */
export interface NxCloudCallObserver {
  /**
   * One attempt that went out, with the code NxCloud answered (if any) and its duration; or one call
   * refused before any attempt (breaker open, shed), without either.
   */
  call (outcome: NxCloudCallOutcome, code: number | undefined, seconds: number | undefined): void
}

const NO_OBSERVER: NxCloudCallObserver = { call () {} }

export interface NxCloudClientOptions {
  baseUrl: string
  accessKey: string
  accessSecret: string
  timeoutMs: number
  connections: number
  protection: UpstreamProtectionOptions
  observer?: NxCloudCallObserver
  /** The application's log, for what concerns no one request: the circuit breaker's changes of state. */
  log?: BreakerLog
}

export interface NxCloudClient {
  /**
   * One signed call, under the upstream protection: the `data` of NxCloud's code-0 envelope, checked
   * against the endpoint's schema, or an NxCloudError.
   */
  call<Data> (endpoint: NxCloudEndpoint<Data>, body: NxCloudRequestBody, log: FastifyBaseLogger): Promise<Data>
  /** The phones of one customer application, as NxCloud lists them, or an NxCloudError. */
  fetchPhoneList (appkey: string, log: FastifyBaseLogger): Promise<UpstreamPhone[]>
  /** Calls in flight and waiting, and the breaker's state, now. */
  load (): UpstreamLoad
  close (): Promise<void>
}

export function createNxCloudClient (options: NxCloudClientOptions): NxCloudClient {
  const pool = new Pool(new URL(options.baseUrl).origin, {
    connections: options.connections,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  })
  const protection = createUpstreamProtection(options.protection, options.log)
  const observer = options.observer ?? NO_OBSERVER
  const call = <Data>(endpoint: NxCloudEndpoint<Data>, body: NxCloudRequestBody, log: FastifyBaseLogger) =>
    signedCall({ pool, options, protection, observer, log }, endpoint, body)
  return {
    call,
    fetchPhoneList: async (appkey, log) => (await call(PHONE_LIST_ENDPOINT, { appkey }, log)) ?? [],
    load: () => protection.load(),
    close: () => pool.close(),
  }
}

interface CallContext {
  pool: Dispatcher
  options: NxCloudClientOptions
  protection: UpstreamProtection
  observer: NxCloudCallObserver
  log: FastifyBaseLogger
}

// The whole call, retries and their backoff included, has one budget of NXCLOUD_TIMEOUT_MS.
async function signedCall<Data> (context: CallContext, endpoint: NxCloudEndpoint<Data>, body: NxCloudRequestBody): Promise<Data> {
  const { pool, options, protection, observer } = context
  const budget = AbortSignal.timeout(options.timeoutMs)
  const json = JSON.stringify(body)
  const span = `${CALL_SPAN_PREFIX}${endpoint.action}`
  try {
    return await protection.execute((attempt) => inSpan(span, { 'nxcloud.attempt': attempt }, async () => {
      const startedAt = performance.now()
      try {
        budget.throwIfAborted()
        const data = dataOf(endpoint, await postSigned(pool, options, endpoint, json, budget))
        reportAttempt(context, { action: endpoint.action, appkey: body.appkey, attempt, startedAt })
        setActiveSpanAttribute('nxcloud.code', UpstreamCodes.success)
        return data
      } catch (error) {
        const failure = asNxCloudError(error, budget, options.timeoutMs)
        reportAttempt(context, { action: endpoint.action, appkey: body.appkey, attempt, startedAt, failure })
        setActiveSpanAttribute('nxcloud.code', failure.code)
        throw failure
      }
    }), budget, options.timeoutMs)
  } catch (error) {
    if (error instanceof NxCloudError && error.refused) observer.call(error.kind, undefined, undefined)
    throw error
  }
}

// Each attempt signs afresh: NxCloud rejects a `ts` more than 60 s from its clock.
async function postSigned (
  pool: Dispatcher,
  options: NxCloudClientOptions,
  endpoint: NxCloudEndpoint<unknown>,
  body: string,
  signal: AbortSignal
): Promise<UpstreamEnvelope> {
  const headers = {
    accessKey: options.accessKey,
    action: endpoint.action,
    bizType: endpoint.bizType,
    ts: String(Date.now()),
  }
  const sign = signRequest({ ...headers, body, accessSecret: options.accessSecret })
  const response = await pool.request({
    method: 'POST',
    path: endpoint.path,
    headers: { ...headers, sign, 'content-type': 'application/json' },
    body,
    signal,
  })
  setActiveSpanAttribute('http.response.status_code', response.statusCode)
  const text = await readCappedText(response.body, MAX_RESPONSE_BYTES,
    () => new NxCloudError('invalid-response', `NxCloud answered more than ${MAX_RESPONSE_BYTES} bytes`))
  if (response.statusCode < 200 || response.statusCode > 299) {
    throw new NxCloudError('http-status', `NxCloud answered HTTP ${response.statusCode}`, { httpStatus: response.statusCode })
  }
  return parseEnvelope(text)
}

function parseEnvelope (text: string): UpstreamEnvelope {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new NxCloudError('invalid-response', 'NxCloud answered with a body that is not JSON')
  }
  if (!UpstreamEnvelopeValidator.Check(parsed)) {
    throw new NxCloudError('invalid-response', 'NxCloud answered without a {code, message, data} envelope')
  }
  return parsed
}

function dataOf<Data> (endpoint: NxCloudEndpoint<Data>, envelope: UpstreamEnvelope): Data {
  if (envelope.code !== UpstreamCodes.success) throw NxCloudError.ofCode(envelope.code, envelope.message ?? undefined)
  const data = envelope.data ?? null
  if (!endpoint.data.Check(data)) {
    const [first] = endpoint.data.Errors(data)
    const where = first ? ` at data${first.instancePath}` : ''
    throw new NxCloudError('invalid-response', `NxCloud answered ${endpoint.action} data of the wrong shape${where}`)
  }
  return data
}

function asNxCloudError (error: unknown, budget: AbortSignal, timeoutMs: number): NxCloudError {
  if (budget.aborted) {
    return new NxCloudError('timeout', `NxCloud did not answer within ${timeoutMs} ms`, { cause: error })
  }
  if (error instanceof NxCloudError) return error
  return new NxCloudError('unreachable', `The connection to NxCloud failed (${errorCode(error)})`, { cause: error })
}

function errorCode (error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, cause } = error as { code?: unknown, cause?: unknown }
    if (typeof code === 'string') return code
    if (cause !== undefined) return errorCode(cause)
  }
  return 'unknown'
}

interface AttemptRecord {
  action: string
  appkey: string
  attempt: number
  startedAt: number
  failure?: NxCloudError
}

// One log line per attempt, and the observer told. Auth-range codes mean our own credentials or clock are wrong.
function reportAttempt ({ log, observer }: CallContext, record: AttemptRecord): void {
  const { failure } = record
  const code = failure === undefined ? UpstreamCodes.success : failure.code
  const latencyMs = performance.now() - record.startedAt
  const outcome = failure?.kind ?? 'ok'
  observer.call(outcome, code, latencyMs / 1000)
  const nxcloud = {
    action: record.action,
    appkey: record.appkey,
    attempt: record.attempt,
    code,
    latencyMs: Math.round(latencyMs * 100) / 100,
    outcome,
  }
  if (code !== undefined && isAuthenticationCode(code)) {
    log.error({ nxcloud }, 'nxcloud rejected our credentials: check NXCLOUD_ACCESS_KEY, NXCLOUD_ACCESS_SECRET and the clock')
  } else if (failure !== undefined && !failure.aboutTheRequest) {
    log.warn({ nxcloud, reason: failure.message }, 'nxcloud call failed')
  } else {
    log.info({ nxcloud }, 'nxcloud call')
  }
}
