import { connect, type AddressInfo } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import type { Test } from 'tap'
import { Client, request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { eventually } from '../support/eventually.js'
import { parseLogLines } from '../support/log-lines.js'
import { exitOf, startServerProcess } from './server-process.js'

// How long NxCloud takes over the in-flight request: far longer than the steps from its reaching NxCloud
// to the close (or to the end of the drain), so that it is still in flight then, on a busy machine too.
const IN_FLIGHT = 'sim-slow-1500'
// Far longer than the in-flight request.
const SHUTDOWN_TIMEOUT_MS = 10_000
// Shorter than the in-flight request, so that it is still in flight when the listener stops.
const SHUTDOWN_DRAIN_DELAY_MS = 300
const OUR_SHUTTING_DOWN_BODY = { status: 'shutting-down', checks: { redis: 'not-configured' } }
const FASTIFY_CLOSING_BODY = { error: 'Service Unavailable', message: 'Service Unavailable', statusCode: 503 }

interface PhoneList {
  appkey: string
  phones: unknown[]
  fetchedAt: string
}

async function upstreamCalled (simulator: NxCloudSimulator): Promise<void> {
  await eventually(() => simulator.calls >= 1, { what: 'the request to reach NxCloud' })
}

async function listeningApp (t: Test, simulator: NxCloudSimulator): Promise<{ app: FastifyInstance, origin: string }> {
  const { app } = await buildTestApp(t, testConfig(simulator))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, origin: `http://127.0.0.1:${port}` }
}

t.test('closing the app lets the in-flight request finish and then refuses connections', async (t) => {
  const simulator = await startSimulator(t)
  const { app, origin } = await listeningApp(t, simulator)
  // The second request must arrive during close on a connection already open: pipelined behind the slow one.
  const keepAlive = new Client(origin, { pipelining: 2 })
  t.teardown(() => keepAlive.destroy())

  const inFlight = keepAlive.request({ method: 'GET', path: phonesUrl(IN_FLIGHT) })
  await upstreamCalled(simulator)
  const closing = app.close()
  const readyDuringClose = keepAlive.request({ method: 'GET', path: '/readyz' }).then(
    async (response) => ({ status: response.statusCode, body: await response.body.json() }),
    (error: unknown) => ({ error })
  )

  const response = await inFlight
  t.equal(response.statusCode, 200, 'the in-flight request completes')
  const list = await response.body.json() as PhoneList
  t.equal(list.appkey, IN_FLIGHT)
  t.equal(list.phones.length, 2, 'with its full body')

  // Fastify answers a request that reaches a closing server itself, before /readyz runs; a server that
  // hangs up after the in-flight answer leaves the pipelined request to fail on a refused reconnect.
  const ready = await readyDuringClose
  if ('error' in ready) {
    t.match(ready.error, { code: 'ECONNREFUSED' }, 'a request arriving during close is not served')
  } else {
    t.equal(ready.status, 503, 'a request arriving during close is answered 503')
    const unavailable = isDeepStrictEqual(ready.body, OUR_SHUTTING_DOWN_BODY) || isDeepStrictEqual(ready.body, FASTIFY_CLOSING_BODY)
    t.ok(unavailable, 'its body says the service is unavailable')
  }

  await closing
  await t.rejects(request(`${origin}/healthz`), { code: 'ECONNREFUSED' }, 'new connections are refused')
  t.equal(simulator.calls, 1)
})

t.test('a kept-alive client does not hold up close: the in-flight answer asks it to hang up', async (t) => {
  const simulator = await startSimulator(t)
  const { app, origin } = await listeningApp(t, simulator)
  const keepAlive = new Client(origin)
  try {
    const inFlight = keepAlive.request({ method: 'GET', path: phonesUrl(IN_FLIGHT) })
    await upstreamCalled(simulator)
    const closing = app.close()

    const response = await inFlight
    t.equal(response.statusCode, 200, 'the in-flight request completes')
    t.equal((await response.body.json() as PhoneList).phones.length, 2, 'with its full body')
    t.equal(response.headers['connection'], 'close', 'the answer tells the client to close the connection')
    // A close held up by the client would hang here until the test's own timeout fails it.
    await t.resolves(closing, 'close completes while the client still holds its connection')
  } finally {
    await keepAlive.destroy()
  }
})

t.test('while draining, readiness fails at once and the listener keeps serving, each answer closing its connection', async (t) => {
  const simulator = await startSimulator(t)
  const { app, origin } = await listeningApp(t, simulator)
  const keepAlive = new Client(origin)
  t.teardown(() => keepAlive.destroy())
  const warm = await keepAlive.request({ method: 'GET', path: phonesUrl('demo-shop') })
  await warm.body.dump()
  t.notOk(warm.headers['connection'] === 'close', 'before the drain the connection is kept alive')

  app.beginShutdown()
  const ready = await request(`${origin}/readyz`)
  t.equal(ready.statusCode, 503, 'readiness fails')
  t.same(await ready.body.json(), OUR_SHUTTING_DOWN_BODY)
  for (const attempt of ['on the kept-alive connection', 'on a new connection']) {
    const response = await keepAlive.request({ method: 'GET', path: phonesUrl('demo-shop') })
    t.equal(response.statusCode, 200, `a request ${attempt} is served`)
    t.equal((await response.body.json() as PhoneList).phones.length, 2)
    t.equal(response.headers['connection'], 'close', 'and its answer closes the connection')
  }
  t.ok(app.server.listening, 'the listener is still open')
})

t.test('requests pipelined behind one in flight when the drain begins: its answer says close, the connection then ends with a FIN, the rest unanswered', async (t) => {
  const simulator = await startSimulator(t)
  const { app, origin } = await listeningApp(t, simulator)
  const socket = connect(Number(new URL(origin).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  let ended: string | undefined
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.on('end', () => { ended = 'FIN' })
  socket.on('error', (error: NodeJS.ErrnoException) => { ended = error.code })
  const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
  socket.write(request(phonesUrl('sim-slow-1000')) + request('/healthz') + request(phonesUrl('demo-shop')))
  await upstreamCalled(simulator)
  app.beginShutdown()

  await eventually(() => ended, { what: 'the connection to end' })
  t.equal(ended, 'FIN', 'the server ended the connection, without a reset')
  const answers = received.split(/(?=HTTP\/1\.1 )/)
  t.equal(answers.length, 1, 'one answer: the requests behind it are left for the client to send again')
  t.match(answers[0], /^HTTP\/1\.1 200 /)
  t.match(answers[0], /\r\nconnection: close\r\n/i, 'and it said close')
})

t.test('SIGTERM drains, then finishes the request still in flight when the listener stops, logs the shutdown and exits 0', async (t) => {
  const simulator = await startSimulator(t)
  const { child, output, origin } = await startServerProcess(t, simulator, {
    SHUTDOWN_DRAIN_DELAY_MS: String(SHUTDOWN_DRAIN_DELAY_MS),
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  })

  const inFlight = request(`${origin}${phonesUrl(IN_FLIGHT)}`)
  await upstreamCalled(simulator)
  const exited = exitOf(child)
  t.ok(child.kill('SIGTERM'), 'SIGTERM delivered')

  const response = await inFlight
  t.equal(response.statusCode, 200, 'the in-flight request completes')
  t.equal(response.headers['connection'], 'close', 'and asks its client to reconnect elsewhere')
  const list = await response.body.json() as PhoneList
  t.equal(list.appkey, IN_FLIGHT)
  t.equal(list.phones.length, 2, 'with its full body')

  t.same(await exited, { code: 0, signal: null }, 'the process exits 0 on its own')
  const lines = parseLogLines(output)
  const shutdown = lines.find((line) => String(line.msg).startsWith('shutting down'))
  t.match(shutdown, { level: 30, signal: 'SIGTERM', drainDelayMs: SHUTDOWN_DRAIN_DELAY_MS, msg: /^shutting down: draining/ },
    'a JSON log line announces the drain')
  const listenerStops = lines.findIndex((line) => String(line.msg).startsWith('shutting down: the listener stops'))
  const completed = lines.findIndex((line) => line.msg === 'request completed' && line.statusCode === 200 &&
    String(line.url).includes(IN_FLIGHT))
  t.ok(listenerStops !== -1, 'a JSON log line announces the end of the drain')
  t.ok(completed > listenerStops, 'the in-flight request is logged as completed after the listener stopped')
  t.equal(output.stderr, '')
  t.equal(simulator.calls, 1)
})
