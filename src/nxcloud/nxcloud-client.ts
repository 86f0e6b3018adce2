import { Pool, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import { ProblemError } from '../errors/problem-error.js'
import { isAuthenticationCode, problemKindForUpstreamCode, UpstreamCodes } from '../errors/upstream-codes.js'
import { inSpan, setActiveSpanAttribute } from '../observability/tracing.js'
import { signRequest } from './sign-request.js'
import { createUpstreamProtection, markRetryable, type UpstreamProtection, type UpstreamProtectionOptions } from './upstream-protection.js'
import {
  UpstreamEnvelopeValidator,
  UpstreamPhoneListDataValidator,
  type UpstreamEnvelope,
  type UpstreamPhone,
} from './upstream-schemas.js'

export const PHONE_LIST_PATH = '/api/wa/integrator/embedded/register/phoneList'
const WHATSAPP_BIZ_TYPE = '2'
const PHONE_LIST_ACTION = 'phoneList'
// An envelope listing a tenant's phones is a few KiB; anything far larger is not one.
const MAX_RESPONSE_BYTES = 1024 * 1024
// NxCloud's "request failed" and "system busy": worth another attempt, unlike the codes about the request.
const RETRYABLE_CODES = new Set([-1, 9001])
const HTTP_SERVER_ERROR = 500
const KEEP_ALIVE_TIMEOUT_MS = 4_000
// One span per attempt: the undici request span is its child, and a retry shows as a second one.
const CALL_SPAN = 'nxcloud.phoneList'

export interface NxCloudClientOptions {
  baseUrl: string
  accessKey: string
  accessSecret: string
  timeoutMs: number
  connections: number
  protection: UpstreamProtectionOptions
}

export interface NxCloudClient {
  /** The phones of one customer application, as NxCloud lists them, or a ProblemError. */
  fetchPhoneList (appkey: string, log: FastifyBaseLogger): Promise<UpstreamPhone[]>
  close (): Promise<void>
}

export function createNxCloudClient (options: NxCloudClientOptions): NxCloudClient {
  const pool = new Pool(new URL(options.baseUrl).origin, {
    connections: options.connections,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  })
  const protection = createUpstreamProtection(options.protection)
  return {
    fetchPhoneList: (appkey, log) => fetchPhoneList(pool, options, protection, appkey, log),
    close: () => pool.close(),
  }
}

// The whole call, retries and their backoff included, has one budget of NXCLOUD_TIMEOUT_MS.
async function fetchPhoneList (
  pool: Dispatcher,
  options: NxCloudClientOptions,
  protection: UpstreamProtection,
  appkey: string,
  log: FastifyBaseLogger
): Promise<UpstreamPhone[]> {
  const budget = AbortSignal.timeout(options.timeoutMs)
  const body = JSON.stringify({ appkey })
  return await protection.execute((attempt) => inSpan(CALL_SPAN, { 'nxcloud.attempt': attempt }, async () => {
    const startedAt = performance.now()
    try {
      budget.throwIfAborted()
      const phones = phonesOf(await postSigned(pool, options, body, budget))
      logCall(log, { appkey, attempt, startedAt, code: UpstreamCodes.success })
      setActiveSpanAttribute('nxcloud.code', UpstreamCodes.success)
      return phones
    } catch (error) {
      const problem = toProblem(error, budget, options.timeoutMs)
      logCall(log, { appkey, attempt, startedAt, code: problem.upstreamCode, failure: problem })
      setActiveSpanAttribute('nxcloud.code', problem.upstreamCode)
      throw problem
    }
  }), budget, options.timeoutMs)
}

// Each attempt signs afresh: NxCloud rejects a `ts` more than 60 s from its clock.
async function postSigned (
  pool: Dispatcher,
  options: NxCloudClientOptions,
  body: string,
  signal: AbortSignal
): Promise<UpstreamEnvelope> {
  const headers = {
    accessKey: options.accessKey,
    action: PHONE_LIST_ACTION,
    bizType: WHATSAPP_BIZ_TYPE,
    ts: String(Date.now()),
  }
  const sign = signRequest({ ...headers, body, accessSecret: options.accessSecret })
  const response = await pool.request({
    method: 'POST',
    path: PHONE_LIST_PATH,
    headers: { ...headers, sign, 'content-type': 'application/json' },
    body,
    signal,
  })
  setActiveSpanAttribute('http.response.status_code', response.statusCode)
  const text = await readLimited(response.body, MAX_RESPONSE_BYTES)
  if (response.statusCode < 200 || response.statusCode > 299) {
    const problem = new ProblemError('upstreamInvalidResponse', `NxCloud answered HTTP ${response.statusCode}`)
    throw response.statusCode >= HTTP_SERVER_ERROR ? markRetryable(problem) : problem
  }
  return parseEnvelope(text)
}

async function readLimited (body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > maxBytes) {
      body.destroy()
      throw new ProblemError('upstreamInvalidResponse', `NxCloud answered more than ${maxBytes} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseEnvelope (text: string): UpstreamEnvelope {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ProblemError('upstreamInvalidResponse', 'NxCloud answered with a body that is not JSON')
  }
  if (!UpstreamEnvelopeValidator.Check(parsed)) {
    throw new ProblemError('upstreamInvalidResponse', 'NxCloud answered without a {code, message, data} envelope')
  }
  return parsed
}

function phonesOf (envelope: UpstreamEnvelope): UpstreamPhone[] {
  if (envelope.code !== UpstreamCodes.success) {
    throw problemForCode(envelope)
  }
  const data = envelope.data ?? null
  if (!UpstreamPhoneListDataValidator.Check(data)) {
    const [first] = UpstreamPhoneListDataValidator.Errors(data)
    const where = first ? ` at data${first.instancePath}` : ''
    throw new ProblemError('upstreamInvalidResponse', `NxCloud answered a phone list of the wrong shape${where}`)
  }
  return data ?? []
}

function problemForCode (envelope: UpstreamEnvelope): ProblemError {
  const kind = problemKindForUpstreamCode(envelope.code)
  // For the tenant-level answers the upstream's own words help the caller; for the rest they are ours to fix.
  const detail = kind === 'tenantNotFound' || kind === 'tenantForbidden' || kind === 'upstreamRejectedParameters'
    ? `NxCloud answered code ${envelope.code}: ${envelope.message ?? 'no message'}`
    : `NxCloud answered code ${envelope.code}`
  const problem = new ProblemError(kind, detail, { upstreamCode: envelope.code })
  return RETRYABLE_CODES.has(envelope.code) ? markRetryable(problem) : problem
}

function toProblem (error: unknown, budget: AbortSignal, timeoutMs: number): ProblemError {
  if (budget.aborted) {
    return new ProblemError('upstreamTimeout', `NxCloud did not answer within ${timeoutMs} ms`, { cause: error })
  }
  if (error instanceof ProblemError) return error
  return markRetryable(new ProblemError('upstreamUnreachable', `The connection to NxCloud failed (${errorCode(error)})`, {
    cause: error,
  }))
}

function errorCode (error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, cause } = error as { code?: unknown, cause?: unknown }
    if (typeof code === 'string') return code
    if (cause !== undefined) return errorCode(cause)
  }
  return 'unknown'
}

interface CallRecord {
  appkey: string
  attempt: number
  startedAt: number
  code: number | undefined
  failure?: ProblemError
}

// One line per upstream call. Auth-range codes mean our own credentials or clock are wrong.
function logCall (log: FastifyBaseLogger, record: CallRecord): void {
  const nxcloud = {
    action: PHONE_LIST_ACTION,
    appkey: record.appkey,
    attempt: record.attempt,
    code: record.code,
    latencyMs: Math.round((performance.now() - record.startedAt) * 100) / 100,
    outcome: record.failure?.kind ?? 'ok',
  }
  if (record.code !== undefined && isAuthenticationCode(record.code)) {
    log.error({ nxcloud }, 'nxcloud rejected our credentials: check NXCLOUD_ACCESS_KEY, NXCLOUD_ACCESS_SECRET and the clock')
  } else if (record.failure !== undefined && record.failure.statusCode >= 500) {
    log.warn({ nxcloud, reason: record.failure.message }, 'nxcloud call failed')
  } else {
    log.info({ nxcloud }, 'nxcloud call')
  }
}
