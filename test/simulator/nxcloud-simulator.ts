// NxCloud phoneList simulator for tests, local development and benchmarks.
// It verifies requests the way the upstream documents it (see shared/nxcloud/signing.md) and
// offers fault-injection appkeys (sim-*) so every upstream failure can be triggered on demand, generated
// tenants (bench-tenant-<n>) for load tests, and a fixed latency on every answer (latencyMs).
// Production code must never import this file.

import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DEMO_TENANTS, generatedTenant } from './demo-tenants.js'
import type { DemoTenant, UpstreamPhone } from './demo-tenants.js'

export interface SimulatorOptions {
  accessKey: string
  accessSecret: string
  host?: string
  port?: number
  tenants?: Record<string, DemoTenant>
  clockSkewMs?: number
  /** Every phoneList answer waits this long first, as a distant upstream would (0, the default: at once). */
  latencyMs?: number
}

export interface NxCloudSimulator {
  url: string
  calls: number
  receivedSigns: string[]
  lastHeaders?: Record<string, string | string[] | undefined>
  /**
   * From now on answer `appkey` as the fault appkey `fault` would be answered (e.g. 'sim-code-9001',
   * 'sim-slow-500'), so a tenant that was served can start failing; undefined restores it.
   */
  answerAs(appkey: string, fault: string | undefined): void
  resetCalls(): void
  close(): Promise<void>
}

const PHONE_LIST_PATH = '/api/wa/integrator/embedded/register/phoneList'
const PHONE_LIST_METHOD = 'POST'
const WHATSAPP_BIZ_TYPE = '2'
const PHONE_LIST_ACTION = 'phoneList'
const TS_WINDOW_MS = 60_000
const DEFAULT_HOST = '127.0.0.1'
const EPHEMERAL_PORT = 0
const MAX_BODY_BYTES = 1024 * 1024
// setTimeout misbehaves above 2^31-1 ms; a minute is far beyond any client timeout worth testing
const MAX_SIMULATED_DELAY_MS = 60_000
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'
const ACCEPTED_REQUEST_CONTENT_TYPE = /^application\/json\s*(;\s*charset=utf-8\s*)?$/i
const ALL_DIGITS = /^\d+$/
const SIMULATED_MESSAGE = 'simulated'
const SLOW_ANSWER_TENANT = 'demo-shop'

const HTTP_OK = 200
const HTTP_NOT_FOUND = 404
const HTTP_PAYLOAD_TOO_LARGE = 413
const HTTP_INTERNAL_ERROR = 500

const CODE = {
  success: 0,
  requestFailed: -1,
  missingParameters: 1001,
  parameterError: 1002,
  invalidSignature: 1003,
  timestampExpired: 1004,
  insufficientPermissions: 1005,
  parameterException: 9000,
  appkeyNotFound: 9008,
  appkeyOfOtherCustomer: 9010,
} as const

const SUCCESS_MESSAGE = 'Request successful'

const MESSAGE: Record<number, string> = {
  [CODE.success]: SUCCESS_MESSAGE,
  [CODE.requestFailed]: 'Request failed',
  [CODE.missingParameters]: 'Missing parameters',
  [CODE.parameterError]: 'Parameter error',
  [CODE.invalidSignature]: 'Invalid signature',
  [CODE.timestampExpired]: 'Timestamp expired',
  [CODE.insufficientPermissions]: 'Insufficient permissions',
  [CODE.parameterException]: 'Parameter exception',
  [CODE.appkeyNotFound]: 'APPKEY does not exist',
  [CODE.appkeyOfOtherCustomer]: 'The customer information of the authentication mechanism is inconsistent with the APPKEY customer information',
}

const SIGN_ALGORITHMS = new Set(['md5', 'sha256'])
const DEFAULT_SIGN_ALGORITHM = 'md5'

const FAULT = {
  code: /^sim-code-(-?\d{1,9})$/,
  httpStatus: /^sim-http-([2-5]\d\d)$/,
  slow: /^sim-slow-(\d{1,9})$/,
  badJson: 'sim-bad-json',
  badShape: 'sim-bad-shape',
  badRecord: 'sim-bad-record',
  reset: 'sim-reset',
} as const

const TRUNCATED_JSON_BODY = '{"code":0,"data":['
const WRONG_SHAPE_BODY = '{"code":"zero","data":{}}'
const BAD_RECORD_DATA = [{ display_phone_number: 42 }]

interface SignedHeaders {
  accessKey: string
  ts: string
  bizType: string
  action: string
  sign: string
}

interface SimulatorState {
  readonly options: Required<Pick<SimulatorOptions, 'accessKey' | 'accessSecret' | 'clockSkewMs' | 'latencyMs'>>
  readonly tenants: Readonly<Record<string, DemoTenant>>
  readonly pendingDelays: Set<NodeJS.Timeout>
  readonly substitutes: ReadonlyMap<string, string>
  readonly simulator: NxCloudSimulator
}

type Verdict = { ok: true, appkey: string } | { ok: false, code: number }

export async function startNxCloudSimulator (options: SimulatorOptions): Promise<NxCloudSimulator> {
  const pendingDelays = new Set<NodeJS.Timeout>()
  const substitutes = new Map<string, string>()
  const server = createServer()
  const simulator: NxCloudSimulator = {
    url: '',
    calls: 0,
    receivedSigns: [],
    answerAs (appkey, fault) {
      if (fault === undefined) substitutes.delete(appkey)
      else substitutes.set(appkey, fault)
    },
    resetCalls () {
      simulator.calls = 0
      simulator.receivedSigns = []
    },
    close: () => closeServer(server, pendingDelays),
  }
  const state: SimulatorState = {
    options: {
      accessKey: options.accessKey,
      accessSecret: options.accessSecret,
      clockSkewMs: options.clockSkewMs ?? 0,
      latencyMs: Math.min(Math.max(options.latencyMs ?? 0, 0), MAX_SIMULATED_DELAY_MS),
    },
    tenants: options.tenants ?? DEMO_TENANTS,
    pendingDelays,
    substitutes,
    simulator,
  }
  server.on('request', (req, res) => {
    handleRequest(state, req, res).catch(() => answerInternalError(res))
  })
  await listen(server, options.host ?? DEFAULT_HOST, options.port ?? EPHEMERAL_PORT)
  simulator.url = originOf(server)
  return simulator
}

async function listen (server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function originOf (server: Server): string {
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
}

async function closeServer (server: Server, pendingDelays: Set<NodeJS.Timeout>): Promise<void> {
  for (const delay of pendingDelays) clearTimeout(delay)
  pendingDelays.clear()
  if (!server.listening) return
  const closed = new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()))
  })
  server.closeAllConnections()
  await closed
}

async function handleRequest (state: SimulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  recordRequest(state.simulator, req)
  const isPhoneList = isPhoneListRequest(req)
  if (isPhoneList) state.simulator.calls++
  const body = await readBody(req)
  if (!isPhoneList) {
    answerEnvelope(res, CODE.requestFailed, HTTP_NOT_FOUND, 'Not found')
  } else if (state.options.latencyMs > 0) {
    answerLater(state, res, state.options.latencyMs, () => { answerPhoneList(state, req, res, body) })
  } else {
    answerPhoneList(state, req, res, body)
  }
}

function answerPhoneList (state: SimulatorState, req: IncomingMessage, res: ServerResponse, body: string | undefined): void {
  if (body === undefined) {
    answerEnvelope(res, CODE.requestFailed, HTTP_PAYLOAD_TOO_LARGE, 'Request body too large')
    return
  }
  const verdict = verifyRequest(state, req, body)
  if (!verdict.ok) {
    answerEnvelope(res, verdict.code)
    return
  }
  answerForAppkey(state, req, res, state.substitutes.get(verdict.appkey) ?? verdict.appkey)
}

function recordRequest (simulator: NxCloudSimulator, req: IncomingMessage): void {
  simulator.lastHeaders = { ...req.headers }
  const sign = req.headers.sign
  if (typeof sign === 'string') simulator.receivedSigns.push(sign)
}

function isPhoneListRequest (req: IncomingMessage): boolean {
  return req.method === PHONE_LIST_METHOD && req.url === PHONE_LIST_PATH
}

// Resolves undefined when the body exceeds MAX_BODY_BYTES; the rest is still drained so the
// connection stays usable for keep-alive.
async function readBody (req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size <= MAX_BODY_BYTES) chunks.push(buffer)
  }
  return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')
}

// Same order as NxCloud: headers present, header values, timestamp, access key, signature, body.
function verifyRequest (state: SimulatorState, req: IncomingMessage, rawBody: string): Verdict {
  const headers = readSignedHeaders(req)
  if (headers === undefined) return { ok: false, code: CODE.missingParameters }
  if (headers.bizType !== WHATSAPP_BIZ_TYPE || headers.action !== PHONE_LIST_ACTION) {
    return { ok: false, code: CODE.parameterError }
  }
  if (!isFreshTimestamp(headers.ts, state.options.clockSkewMs)) return { ok: false, code: CODE.timestampExpired }
  if (headers.accessKey !== state.options.accessKey) return { ok: false, code: CODE.insufficientPermissions }
  if (!ACCEPTED_REQUEST_CONTENT_TYPE.test(req.headers['content-type'] ?? '')) {
    return { ok: false, code: CODE.invalidSignature }
  }
  const algorithm = headerValue(req, 'algorithm') ?? DEFAULT_SIGN_ALGORITHM
  if (!SIGN_ALGORITHMS.has(algorithm)) return { ok: false, code: CODE.parameterError }
  const expectedSign = computeSign(algorithm, headers, rawBody, state.options.accessSecret)
  if (!signsMatch(headers.sign, expectedSign)) return { ok: false, code: CODE.invalidSignature }
  const appkey = readAppkey(rawBody)
  if (appkey === undefined) return { ok: false, code: CODE.parameterException }
  return { ok: true, appkey }
}

function headerValue (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : value
}

function readSignedHeaders (req: IncomingMessage): SignedHeaders | undefined {
  const accessKey = headerValue(req, 'accessKey')
  const ts = headerValue(req, 'ts')
  const bizType = headerValue(req, 'bizType')
  const action = headerValue(req, 'action')
  const sign = headerValue(req, 'sign')
  if (accessKey === undefined || ts === undefined || bizType === undefined ||
    action === undefined || sign === undefined) return undefined
  return { accessKey, ts, bizType, action, sign }
}

function isFreshTimestamp (ts: string, clockSkewMs: number): boolean {
  if (!ALL_DIGITS.test(ts)) return false
  return Math.abs(Date.now() + clockSkewMs - Number(ts)) <= TS_WINDOW_MS
}

function computeSign (algorithm: string, headers: SignedHeaders, rawBody: string, accessSecret: string): string {
  const headersPart = `accessKey=${headers.accessKey}&action=${headers.action}&bizType=${headers.bizType}&ts=${headers.ts}`
  const bodyPart = rawBody === '' ? '' : `&body=${rawBody}`
  return createHash(algorithm).update(`${headersPart}${bodyPart}&accessSecret=${accessSecret}`, 'utf8').digest('hex')
}

function signsMatch (received: string, expected: string): boolean {
  const receivedBytes = Buffer.from(received, 'utf8')
  const expectedBytes = Buffer.from(expected, 'utf8')
  return receivedBytes.length === expectedBytes.length && timingSafeEqual(receivedBytes, expectedBytes)
}

function readAppkey (rawBody: string): string | undefined {
  let body: unknown
  try {
    body = JSON.parse(rawBody)
  } catch {
    return undefined
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  const appkey = (body as { appkey?: unknown }).appkey
  return typeof appkey === 'string' && appkey !== '' ? appkey : undefined
}

function answerForAppkey (state: SimulatorState, req: IncomingMessage, res: ServerResponse, appkey: string): void {
  if (answerFault(state, req, res, appkey)) return
  const tenant = Object.hasOwn(state.tenants, appkey) ? state.tenants[appkey] : generatedTenant(appkey)
  if (tenant === undefined) {
    answerEnvelope(res, CODE.appkeyNotFound)
  } else if (tenant.owner === 'other') {
    answerEnvelope(res, CODE.appkeyOfOtherCustomer)
  } else {
    answerPhones(res, tenant.phones)
  }
}

// Returns true when the appkey was a fault-injection appkey and has been answered.
function answerFault (state: SimulatorState, req: IncomingMessage, res: ServerResponse, appkey: string): boolean {
  const simulatedCode = FAULT.code.exec(appkey)?.[1]
  if (simulatedCode !== undefined) {
    answerEnvelope(res, Number(simulatedCode), HTTP_OK, SIMULATED_MESSAGE)
    return true
  }
  const simulatedStatus = FAULT.httpStatus.exec(appkey)?.[1]
  if (simulatedStatus !== undefined) {
    answerJson(res, Number(simulatedStatus), JSON.stringify({ error: SIMULATED_MESSAGE }))
    return true
  }
  const simulatedDelay = FAULT.slow.exec(appkey)?.[1]
  if (simulatedDelay !== undefined) {
    answerSlowly(state, res, Math.min(Number(simulatedDelay), MAX_SIMULATED_DELAY_MS))
    return true
  }
  switch (appkey) {
    case FAULT.badJson:
      answerJson(res, HTTP_OK, TRUNCATED_JSON_BODY)
      return true
    case FAULT.badShape:
      answerJson(res, HTTP_OK, WRONG_SHAPE_BODY)
      return true
    case FAULT.badRecord:
      answerJson(res, HTTP_OK, envelopeText(CODE.success, SUCCESS_MESSAGE, BAD_RECORD_DATA))
      return true
    case FAULT.reset:
      req.socket.destroy()
      return true
    default:
      return false
  }
}

function answerSlowly (state: SimulatorState, res: ServerResponse, delayMs: number): void {
  const phones = state.tenants[SLOW_ANSWER_TENANT]?.phones ?? DEMO_TENANTS[SLOW_ANSWER_TENANT]?.phones ?? null
  answerLater(state, res, delayMs, () => { answerPhones(res, phones) })
}

function answerLater (state: SimulatorState, res: ServerResponse, delayMs: number, answer: () => void): void {
  const delay = setTimeout(() => {
    state.pendingDelays.delete(delay)
    answer()
  }, delayMs)
  state.pendingDelays.add(delay)
  // 'close' also fires after a normal answer; clearing a finished timer is harmless
  res.once('close', () => {
    clearTimeout(delay)
    state.pendingDelays.delete(delay)
  })
}

function answerPhones (res: ServerResponse, phones: UpstreamPhone[] | null): void {
  answerJson(res, HTTP_OK, envelopeText(CODE.success, SUCCESS_MESSAGE, phones))
}

function answerEnvelope (res: ServerResponse, code: number, status = HTTP_OK, message = MESSAGE[code] ?? SIMULATED_MESSAGE): void {
  answerJson(res, status, envelopeText(code, message, null))
}

function envelopeText (code: number, message: string, data: unknown): string {
  return JSON.stringify({ code, message, data })
}

function answerJson (res: ServerResponse, status: number, text: string): void {
  if (res.destroyed || res.headersSent) return
  res.writeHead(status, {
    'content-type': JSON_CONTENT_TYPE,
    'content-length': Buffer.byteLength(text, 'utf8'),
  })
  res.end(text)
}

function answerInternalError (res: ServerResponse): void {
  answerEnvelope(res, CODE.requestFailed, HTTP_INTERNAL_ERROR)
}
