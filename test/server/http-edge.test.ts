import { connect, type AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { ProblemTypes, type ProblemKind } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, type TestApp } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { logLinesWith, logLineWith } from '../support/log-lines.js'
import { firstAnswer, rawExchange, type RawAnswer } from './raw-http.js'

// Small, so that the slow clients below are cut within a second or two.
const REQUEST_TIMEOUT_MS = 1_000
const HEADERS_TIMEOUT_MS = 500
// The app checks its timeouts every tenth of the shorter one: it may cut a client that much early.
const TIMEOUT_CHECK_MS = HEADERS_TIMEOUT_MS / 10
const TRICKLE_INTERVAL_MS = 200
// Slow clients that would go on trickling far past the exchange's guard (1,000 chunks: 100 s or more):
// when the connection closes within the guard, it is the server that cut them.
const TRICKLE_CHUNKS = 1_000
// Only a guard against a hang, many times the timeouts: how soon the server cuts is measured by test/bench/edge-figures.ts.
const EXCHANGE_GUARD_MS = 30_000
const OVERSIZED_HEADER_BYTES = 20 * 1024
const PINO_INFO_LEVEL = 30
const PROBE_CALLS = 3

interface ListeningApp extends TestApp {
  port: number
}

async function listeningApp (t: Test, env: Record<string, string> = {}): Promise<ListeningApp> {
  const simulator = await startSimulator(t)
  const testApp = await buildTestApp(t, testConfig(simulator, {
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    ...env,
  }))
  await testApp.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...testApp, port: (testApp.app.server.address() as AddressInfo).port }
}

/** A GET with the headers every well-formed request carries, closing the connection after the answer. */
function get (path: string, extraHeaders = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extraHeaders}Connection: close\r\n\r\n`
}

/**
 * An RFC 9457 answer of one kind from the problem table, with X-Request-Id equal to its requestId, and
 * exactly one log line for it.
 */
function assertProblem (t: Test, answer: RawAnswer, kind: ProblemKind, instance: string | undefined, logs: string[]): Record<string, unknown> {
  const { status, type, title } = ProblemTypes[kind]
  t.equal(answer.status, status, `HTTP ${status}`)
  t.match(answer.headers['content-type'], /^application\/problem\+json(;|$)/, 'problem content type')
  const body = JSON.parse(answer.body) as Record<string, unknown>
  t.match(body, { type, title, status, detail: String }, `a ${type} problem`)
  t.ok(String(body['detail']).length > 0, 'with a detail')
  t.equal(body['instance'], instance, instance === undefined ? 'no instance: no path was read' : 'instance is the path')
  t.type(body['requestId'], 'string')
  t.equal(answer.headers['x-request-id'], body['requestId'], 'X-Request-Id is the requestId')
  t.equal(answer.headers['x-content-type-options'], 'nosniff')
  const expectedKeys = ['detail', 'requestId', 'status', 'title', 'type', ...(instance === undefined ? [] : ['instance'])]
  t.same(Object.keys(body).sort(), expectedKeys.sort(), 'exactly the problem fields')
  const lines = logLinesWith(logs, (line) => line.requestId === body['requestId'])
  t.equal(lines.length, 1, 'logged once')
  t.match(lines[0], { level: PINO_INFO_LEVEL, statusCode: status }, 'at info, with its status')
  return body
}

t.test('a path that is not valid percent-encoding is a 400 invalid-request problem, not the router\'s plain JSON', async (t) => {
  const { port, logs } = await listeningApp(t)
  const path = '/tenants/%E0%A4%A/phones'
  const exchange = await rawExchange(port, [get(path)])
  assertProblem(t, firstAnswer(exchange.text), 'invalidRequest', path, logs)
})

t.test('an appkey of 101 or 10,000 characters is the promised 400 invalid-request, not a 414', async (t) => {
  const { port, logs } = await listeningApp(t)
  for (const length of [101, 10_000]) {
    const path = phonesUrl('a'.repeat(length))
    const exchange = await rawExchange(port, [get(path)])
    const body = assertProblem(t, firstAnswer(exchange.text), 'invalidRequest', path, logs)
    t.match(body['detail'], /appkey/, `${length} characters: the detail names the appkey`)
  }
})

t.test('a 20 KB header is a 431 problem from the HTTP parser, with a request id and no instance', async (t) => {
  const { port, logs } = await listeningApp(t)
  const exchange = await rawExchange(port, [get('/healthz', `X-Padding: ${'p'.repeat(OVERSIZED_HEADER_BYTES)}\r\n`)])
  t.ok(exchange.closedByServer, 'the connection is closed')
  assertProblem(t, firstAnswer(exchange.text), 'requestHeadTooLarge', undefined, logs)
})

t.test('a malformed request line is a 400 problem from the HTTP parser', async (t) => {
  const { port, logs } = await listeningApp(t)
  for (const requestLine of ['NOT A REQUEST\r\n\r\n', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n', 'GET\r\n\r\n']) {
    const exchange = await rawExchange(port, [requestLine])
    t.ok(exchange.closedByServer, `${JSON.stringify(requestLine)}: the connection is closed`)
    assertProblem(t, firstAnswer(exchange.text), 'invalidRequest', undefined, logs)
  }
})

t.test('an Expect other than 100-continue is a 417 problem, not Node\'s bodiless 417, and the connection is closed', async (t) => {
  const { port, logs } = await listeningApp(t)
  const cases: Array<[string, string]> = [
    ['GET /healthz', 'Expect: the-moon\r\n'],
    ['GET /healthz', 'Expect: 102-processing\r\n'],
    [`GET ${phonesUrl('demo-shop')}`, 'Expect: 200-ok\r\n'],
    [`POST ${phonesUrl('demo-shop')}/refresh`, 'Expect: 42\r\nContent-Type: application/json\r\nContent-Length: 2\r\n'],
  ]
  for (const [requestLine, headers] of cases) {
    const exchange = await rawExchange(port, [`${requestLine} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`])
    t.ok(exchange.closedByServer, `${requestLine} with ${headers.split('\r\n')[0]}: the connection is closed`)
    const answer = firstAnswer(exchange.text)
    assertProblem(t, answer, 'expectationFailed', requestLine.split(' ')[1], logs)
    t.equal(answer.headers['connection'], 'close', 'and the answer says so')
  }
  t.same(logLinesWith(logs, (line) => line.msg === 'request completed'), [], 'no route ran')
})

t.test('Expect: 100-continue is met: 100 Continue, then the answer to the request, the content sent after the interim answer', async (t) => {
  const { port } = await listeningApp(t)
  const get = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n'])
  t.match(get.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, 'a request without content: 100 Continue, then 200')

  const path = `${phonesUrl('demo-shop')}/refresh`
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\n` +
    'Content-Length: 2\r\nConnection: close\r\n\r\n')
  await eventually(() => received.includes('\r\n\r\n'), { what: 'the interim answer' })
  t.equal(received, 'HTTP/1.1 100 Continue\r\n\r\n', 'the client is asked for its content before any final answer')
  socket.write('{}')
  await new Promise((resolve) => socket.once('end', resolve))
  t.equal(firstAnswer(received.slice('HTTP/1.1 100 Continue\r\n\r\n'.length)).status, 200, 'then the refresh is answered')
})

t.test('an HTTP/1.1 request without Host is a 400 problem, not Node\'s bodiless 400', async (t) => {
  const { port, logs } = await listeningApp(t)
  const exchange = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'])
  const body = assertProblem(t, firstAnswer(exchange.text), 'invalidRequest', '/healthz', logs)
  t.match(body['detail'], /Host/)
})

t.test('a body Fastify cannot parse is a 400 invalid-request problem that the route\'s 400 schema serialises', async (t) => {
  const { port, logs } = await listeningApp(t)
  const path = `${phonesUrl('demo-shop')}/refresh`
  const exchange = await rawExchange(port, [
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{`,
  ])
  assertProblem(t, firstAnswer(exchange.text), 'invalidRequest', path, logs)
})

t.test('a known path asked with a method it does not answer is 405 with Allow', async (t) => {
  const { port, logs } = await listeningApp(t)
  const cases: Array<[string, string, string]> = [
    ['DELETE', phonesUrl('demo-shop'), 'GET, HEAD'],
    ['POST', phonesUrl('demo-shop'), 'GET, HEAD'],
    ['GET', `${phonesUrl('demo-shop')}/refresh`, 'POST'],
    ['PUT', '/healthz', 'GET, HEAD'],
  ]
  for (const [method, path, allow] of cases) {
    const exchange = await rawExchange(port, [`${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`])
    const answer = firstAnswer(exchange.text)
    assertProblem(t, answer, 'methodNotAllowed', path, logs)
    t.equal(answer.headers['allow'], allow, `${method} ${path}: Allow: ${allow}`)
  }
  const unknown = firstAnswer((await rawExchange(port, [get('/tenants/demo-shop')])).text)
  assertProblem(t, unknown, 'routeNotFound', '/tenants/demo-shop', logs)
  t.notOk('allow' in unknown.headers, 'an unknown path is still a 404, without Allow')
})

t.test('a client that trickles a body is cut with a 408 problem once the request timeout has passed', async (t) => {
  const { port, logs } = await listeningApp(t)
  const head = `POST ${phonesUrl('demo-shop')}/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${TRICKLE_CHUNKS}\r\n\r\n`
  const exchange = await rawExchange(port, [head, ...Array.from({ length: TRICKLE_CHUNKS }, () => ' ')],
    { intervalMs: TRICKLE_INTERVAL_MS, deadlineMs: EXCHANGE_GUARD_MS })
  t.ok(exchange.closedByServer, `the server cut the client off (after ${exchange.elapsedMs} ms)`)
  t.ok(exchange.elapsedMs >= REQUEST_TIMEOUT_MS - TIMEOUT_CHECK_MS, 'not before the request timeout')
  assertProblem(t, firstAnswer(exchange.text), 'requestTimeout', undefined, logs)
})

t.test('a client that trickles its headers is cut with a 408 problem once the headers timeout has passed', async (t) => {
  const { port, logs } = await listeningApp(t)
  const lines = Array.from({ length: TRICKLE_CHUNKS }, (_, index) => `X-Slow-${index}: y\r\n`)
  const exchange = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n', ...lines],
    { intervalMs: TRICKLE_INTERVAL_MS / 2, deadlineMs: EXCHANGE_GUARD_MS })
  t.ok(exchange.closedByServer, `the server cut the client off (after ${exchange.elapsedMs} ms)`)
  t.ok(exchange.elapsedMs >= HEADERS_TIMEOUT_MS - TIMEOUT_CHECK_MS, 'not before the headers timeout')
  assertProblem(t, firstAnswer(exchange.text), 'requestTimeout', undefined, logs)
})

t.test('a connection that never sends a byte is closed once the headers timeout has passed', async (t) => {
  const { port } = await listeningApp(t)
  const exchange = await rawExchange(port, [''], { deadlineMs: EXCHANGE_GUARD_MS })
  t.ok(exchange.closedByServer, `the server closed the connection (after ${exchange.elapsedMs} ms)`)
  t.ok(exchange.elapsedMs >= HEADERS_TIMEOUT_MS - TIMEOUT_CHECK_MS, 'not before the headers timeout')
})

t.test('the request cap: the last answer on a connection says close, the socket is closed, nothing past it is answered', async (t) => {
  const maxRequests = 5
  const { port } = await listeningApp(t, { HTTP_MAX_REQUESTS_PER_SOCKET: String(maxRequests) })
  const pipelined = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(maxRequests + 3)
  const exchange = await rawExchange(port, [pipelined])
  t.ok(exchange.closedByServer, 'the server closed the connection')
  const statuses = [...exchange.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]))
  t.same(statuses, Array.from({ length: maxRequests }, () => 200), `${maxRequests} answers, all 200: no bodiless 503 for the rest`)
  const answers = exchange.text.split(/(?=HTTP\/1\.1 )/)
  t.match(answers.at(-1), /\r\nconnection: close\r\n/i, 'the last one says Connection: close')
  t.match(answers.at(0), /\r\nconnection: keep-alive\r\n/i, 'the others keep the connection alive')
})

t.test('/healthz answers are not logged at info; other routes, and a failed probe, are', async (t) => {
  const { port, logs } = await listeningApp(t)
  const origin = `http://127.0.0.1:${port}`
  for (let call = 0; call < PROBE_CALLS; call++) {
    const probe = await request(`${origin}/healthz`)
    t.equal(probe.statusCode, 200)
    await probe.body.dump()
  }
  for (const path of ['/readyz', phonesUrl('demo-shop')]) {
    const response = await request(`${origin}${path}`)
    t.equal(response.statusCode, 200, path)
    await response.body.dump()
  }
  const completed = logLinesWith(logs, (line) => line.msg === 'request completed')
  t.same(completed.filter((line) => line.url === '/healthz'), [], 'no line for a successful /healthz')
  t.same(completed.map((line) => [line.url, line.level]), [['/readyz', PINO_INFO_LEVEL], [phonesUrl('demo-shop'), PINO_INFO_LEVEL]],
    'one info line for each other request')

  const failedProbe = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'])
  t.equal(firstAnswer(failedProbe.text).status, 400)
  t.ok(logLineWith(logs, (line) => line.url === '/healthz' && line.statusCode === 400), 'a failed probe is logged')
})
