import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import { Client, Pool, type Dispatcher } from 'undici'
import { phonesUrl, startSimulator } from '../helper.js'
import { eventually } from '../support/eventually.js'
import { describeKeepAliveLoad, resetsIn, startKeepAliveLoad } from './keep-alive-load.js'
import { exitOf, startServerProcess, STARTUP_DEADLINE_MS } from './server-process.js'

// Short stand-ins for Kubernetes' seconds, long enough for a busy machine to notice readiness and stop
// sending within the drain (a probe, the propagation delay, the load's last answers: well under a second).
const SHUTDOWN_DRAIN_DELAY_MS = 3_000
const SHUTDOWN_TIMEOUT_MS = 3_000
const SERVER_ENV = {
  SHUTDOWN_DRAIN_DELAY_MS: String(SHUTDOWN_DRAIN_DELAY_MS),
  SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  // Every load loop comes from one address: the limiter still runs on every request, but must not refuse it.
  RATE_LIMIT_MAX: '1000000000',
  LOG_LEVEL: 'warn',
}
const LOAD_PATH = phonesUrl('demo-shop')
const LOAD_CONCURRENCY = 6
// A breath between a loop's requests keeps the load continuous without starving the processes under test.
const LOAD_PAUSE_MS = 5
const WARM_UP_MS = 500
// How long a load balancer takes to act on a failed readiness (Kubernetes: endpoints, then kube-proxy or ingress).
const PROPAGATION_DELAY_MS = 200
const READINESS_INTERVAL_MS = 50
const HEALTH_CHECK_INTERVAL_MS = 100
// As generous as a kubelet's probe timeout may be set: a slow answer on a busy machine is not a failed probe.
const PROBE_TIMEOUT_MS = 5_000
const REPLACEMENT_SHARE = 50
const LOAD_AFTER_ROLLOUT_MS = 500

type ProbeResult = number | string

/** One readiness probe over a connection of its own, as the kubelet probes. */
async function probeReadiness (origin: string): Promise<ProbeResult> {
  const client = new Client(origin, { headersTimeout: PROBE_TIMEOUT_MS, bodyTimeout: PROBE_TIMEOUT_MS })
  try {
    const response = await client.request({ method: 'GET', path: '/readyz' })
    await response.body.dump()
    return response.statusCode
  } catch (error) {
    return (error as { code?: string }).code ?? String(error)
  } finally {
    await client.close().catch(() => {})
  }
}

/**
 * A kept-alive connection that answered one request and then stays idle; resolves with how it ended:
 * `end` for a clean close (FIN), the error code for a reset, and when.
 */
async function idleKeptAliveConnection (origin: string, since: () => number): Promise<{ ended: Promise<{ how: string, afterMs: number }> }> {
  const { hostname, port } = new URL(origin)
  const socket = connect(Number(port), hostname)
  socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`)
  await new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve())
    socket.once('error', reject)
  })
  socket.resume()
  const ended = new Promise<{ how: string, afterMs: number }>((resolve) => {
    socket.once('end', () => resolve({ how: 'end', afterMs: since() }))
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ how: error.code ?? String(error), afterMs: since() }))
  })
  return { ended }
}

interface LoadStats {
  sent: number
  succeeded: number
  /** Status and body, or the error code, of every request that did not get a 200. */
  failures: string[]
  /** Answers that asked the client to reconnect (`Connection: close`). */
  closingAnswers: number
  /** Requests sent after `mark()`. */
  sentAfterMark: number
}

interface Load {
  stats: LoadStats
  mark (): void
  stop (): Promise<LoadStats>
}

/** Concurrent loops of GETs over kept-alive connections, each as fast as its answers come; stopped in teardown at the latest. */
function startLoad (t: Test, origin: string, path: string): Load {
  const pool = new Pool(origin, { connections: LOAD_CONCURRENCY })
  const stats: LoadStats = { sent: 0, succeeded: 0, failures: [], closingAnswers: 0, sentAfterMark: 0 }
  let marked = false
  const stopping = new AbortController()
  const loop = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      stats.sent++
      if (marked) stats.sentAfterMark++
      try {
        const response = await pool.request({ method: 'GET', path })
        const body = await response.body.text()
        if (response.statusCode === 200) stats.succeeded++
        else stats.failures.push(`${response.statusCode} ${body.slice(0, 200)}`)
        if (response.headers['connection'] === 'close') stats.closingAnswers++
      } catch (error) {
        stats.failures.push((error as { code?: string }).code ?? String(error))
      }
      await sleep(LOAD_PAUSE_MS)
    }
  }
  const loops = Array.from({ length: LOAD_CONCURRENCY }, loop)
  let stopped: Promise<LoadStats> | undefined
  const stop = async (): Promise<LoadStats> => {
    stopping.abort()
    stopped ??= Promise.all(loops).then(async () => { await pool.close() }).then(() => stats)
    return await stopped
  }
  t.teardown(stop)
  return { stats, mark: () => { marked = true }, stop }
}

interface Backend {
  name: string
  origin: string
  pool: Pool
  ready: boolean
  served: number
  probes: ProbeResult[]
}

interface Balancer {
  origin: string
  add (name: string, origin: string): void
  backend (name: string): Backend
  errors: string[]
}

/**
 * A round-robin HTTP load balancer over kept-alive pools that, as Kubernetes endpoints do, routes only
 * to instances whose /readyz answered 200 at the last health check. It never retries: a failed forward
 * is the client's failure (502).
 */
async function startBalancer (t: Test): Promise<Balancer> {
  const backends: Backend[] = []
  const errors: string[] = []
  let turn = 0
  const stopping = new AbortController()

  const forward = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const ready = backends.filter((backend) => backend.ready)
    const backend = ready[turn++ % ready.length]
    if (backend === undefined) {
      response.writeHead(503).end('no ready instance')
      return
    }
    try {
      const answer = await backend.pool.request({ method: request.method as Dispatcher.HttpMethod, path: request.url ?? '/' })
      const body = Buffer.from(await answer.body.arrayBuffer())
      backend.served++
      response.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type']) }).end(body)
    } catch (error) {
      const failure = `${backend.name}: ${(error as { code?: string }).code ?? String(error)}`
      errors.push(failure)
      response.writeHead(502).end(failure)
    }
  }
  const server = createServer((request, response) => { forward(request, response).catch(() => response.destroy()) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

  const healthChecks = (async () => {
    while (!stopping.signal.aborted) {
      await Promise.all(backends.map(async (backend) => {
        const result = await probeReadiness(backend.origin)
        backend.probes.push(result)
        backend.ready = result === 200
      }))
      await sleep(HEALTH_CHECK_INTERVAL_MS)
    }
  })()
  t.teardown(async () => {
    stopping.abort()
    await healthChecks
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await Promise.all(backends.map((backend) => backend.pool.destroy()))
  })

  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    // A new instance takes traffic only once a health check finds it ready.
    add: (name, origin) => { backends.push({ name, origin, pool: new Pool(origin), ready: false, served: 0, probes: [] }) },
    backend: (name) => {
      const found = backends.find((backend) => backend.name === name)
      if (found === undefined) throw new Error(`no backend ${name}`)
      return found
    },
    errors,
  }
}

t.test('SIGTERM under keep-alive load: readiness fails and stays failed, no request fails during the drain, and the process exits 0', async (t) => {
  const simulator = await startSimulator(t)
  const { child, output, origin } = await startServerProcess(t, simulator, SERVER_ENV)
  const load = startLoad(t, origin, LOAD_PATH)
  let sigtermAt = Number.NaN
  const idleConnection = await idleKeptAliveConnection(origin, () => Date.now() - sigtermAt)
  await sleep(WARM_UP_MS)

  sigtermAt = Date.now()
  const exited = exitOf(child).then((exit) => ({ ...exit, afterMs: Date.now() - sigtermAt }))
  child.kill('SIGTERM')
  load.mark()
  const readiness: Array<{ afterMs: number, result: ProbeResult }> = []
  const watcher = new AbortController()
  exited.finally(() => watcher.abort()).catch(() => {})
  const watching = (async () => {
    while (!watcher.signal.aborted) {
      readiness.push({ afterMs: Date.now() - sigtermAt, result: await probeReadiness(origin) })
      await sleep(READINESS_INTERVAL_MS)
    }
  })()

  // As a load balancer would: the clients stop once readiness has failed and the news has travelled.
  await eventually(() => readiness.some(({ result }) => result === 503), { what: 'readiness to fail' })
  await sleep(PROPAGATION_DELAY_MS)
  const stats = await load.stop()
  const stoppedAt = Date.now() - sigtermAt

  const { afterMs: exitAfterMs, ...exit } = await exited
  t.same(exit, { code: 0, signal: null }, 'the process exits 0')
  await watching
  const unready = readiness.filter(({ result }) => result === 503).map(({ afterMs }) => afterMs)
  const firstUnready = Math.min(...unready)
  const lastUnready = Math.max(...unready)
  t.comment(`sent ${stats.sent} (${stats.sentAfterMark} after SIGTERM), failed ${stats.failures.length}, ` +
    `Connection: close answers ${stats.closingAnswers}; /readyz 503 from ${firstUnready} ms to ${lastUnready} ms ` +
    `after SIGTERM, clients stopped at ${stoppedAt} ms, exit at ${exitAfterMs} ms`)

  t.same(stats.failures, [], 'no request failed')
  t.equal(stats.succeeded, stats.sent)
  t.ok(stats.sentAfterMark > 0, 'requests kept being sent after SIGTERM')
  t.ok(stats.closingAnswers > 0, 'answers during the drain asked their clients to reconnect')
  t.same(readiness.filter(({ afterMs, result }) => afterMs > firstUnready && result === 200), [], '/readyz failed, and stayed failed')
  t.ok(lastUnready >= SHUTDOWN_DRAIN_DELAY_MS / 2, 'and kept answering 503, over new connections, through the drain')
  t.same(readiness.filter(({ afterMs, result }) => afterMs < lastUnready && result !== 200 && result !== 503), [],
    'no probe was refused before the drain ended')
  t.ok(exitAfterMs >= SHUTDOWN_DRAIN_DELAY_MS, 'the process served the whole drain delay before exiting')
  const idle = await idleConnection.ended
  t.equal(idle.how, 'end', 'an idle kept-alive connection is closed cleanly (FIN, not reset)')
  t.ok(idle.afterMs >= SHUTDOWN_DRAIN_DELAY_MS, `once the drain is over (${idle.afterMs} ms after SIGTERM)`)
  t.equal(output.stderr, '')
})

t.test('a rolling restart of one of two instances under continuous load loses no request', async (t) => {
  const simulator = await startSimulator(t)
  const [first, second] = await Promise.all([
    startServerProcess(t, simulator, SERVER_ENV),
    startServerProcess(t, simulator, SERVER_ENV),
  ])
  const balancer = await startBalancer(t)
  balancer.add('first', first.origin)
  balancer.add('second', second.origin)
  await eventually(() => balancer.backend('first').ready && balancer.backend('second').ready,
    { what: 'both instances to be routed to', timeoutMs: STARTUP_DEADLINE_MS })

  const load = startLoad(t, balancer.origin, LOAD_PATH)
  await sleep(WARM_UP_MS)
  const sigtermAt = Date.now()
  const exited = exitOf(first.child).then((exit) => ({ ...exit, afterMs: Date.now() - sigtermAt }))
  first.child.kill('SIGTERM')
  load.mark()
  // As the Deployment's controller does: a replacement starts, and takes traffic once it is ready.
  const replacement = await startServerProcess(t, simulator, SERVER_ENV)
  balancer.add('replacement', replacement.origin)
  const replacementUpAfterMs = Date.now() - sigtermAt
  const { afterMs: exitAfterMs, ...exit } = await exited
  await eventually(() => balancer.backend('replacement').served >= REPLACEMENT_SHARE,
    { what: 'the replacement to take load', timeoutMs: STARTUP_DEADLINE_MS })
  await sleep(LOAD_AFTER_ROLLOUT_MS)
  const stats = await load.stop()

  const served = ['first', 'second', 'replacement'].map((name) => `${name} ${balancer.backend(name).served}`).join(', ')
  const terminated = balancer.backend('first')
  t.comment(`sent ${stats.sent} (${stats.sentAfterMark} after SIGTERM), failed ${stats.failures.length}; served by ${served}; ` +
    `terminated instance exited ${exitAfterMs} ms after SIGTERM, replacement listening at ${replacementUpAfterMs} ms`)

  t.same(stats.failures, [], 'no request failed')
  t.same(balancer.errors, [], 'no forward to an instance failed')
  t.equal(stats.succeeded, stats.sent)
  t.same(exit, { code: 0, signal: null }, 'the terminated instance exited 0')
  t.ok(terminated.probes.includes(503), 'the balancer saw its readiness fail before it went away')
  t.ok(stats.sentAfterMark > REPLACEMENT_SHARE, 'the load went on through the restart')
  t.ok(balancer.backend('second').served > 0 && terminated.served > 0, 'both instances took load before the restart')
  t.equal(first.output.stderr, '')
})

// Many at once, each sending as soon as its previous answer came.
const KEPT_ALIVE_CONNECTIONS = 32
// Long enough that a busy machine notices the readiness failing well before the listener stops.
const KEPT_ALIVE_DRAIN_MS = 2_000
const KEPT_ALIVE_WARM_UP_REQUESTS = 2_000

t.test('SIGTERM under many kept-alive connections behind a balancer: no request reset, every answer after readiness failed closes its connection, each with a FIN', async (t) => {
  const simulator = await startSimulator(t)
  const { child, origin } = await startServerProcess(t, simulator, { ...SERVER_ENV, SHUTDOWN_DRAIN_DELAY_MS: String(KEPT_ALIVE_DRAIN_MS) })
  const port = Number(new URL(origin).port)
  // New connections reach the instance until its readiness failed; then the balancer sends them elsewhere.
  let routed = true
  const load = startKeepAliveLoad({
    request: `GET ${LOAD_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    connections: KEPT_ALIVE_CONNECTIONS,
    nextPort: () => routed ? port : undefined,
  })
  t.teardown(() => load.stop())
  const stats = load.statsOf(port)
  await eventually(() => stats.requests['kept-alive'].answered >= KEPT_ALIVE_WARM_UP_REQUESTS, { what: 'the load to be under way' })

  const exited = exitOf(child)
  child.kill('SIGTERM')
  await eventually(async () => await probeReadiness(origin) === 503, { what: 'readiness to fail' })
  load.mark()
  // The balancer hears of it later: meanwhile new connections still come, and are served, closing.
  await eventually(() => stats.requests.fresh['answered-close'] >= KEPT_ALIVE_CONNECTIONS, { what: 'new connections served during the drain' })
  routed = false
  t.same(await exited, { code: 0, signal: null }, 'the process exits 0')
  await load.stop()
  t.comment(describeKeepAliveLoad(stats))

  t.equal(resetsIn(stats), 0, 'no request, and no connection after its last answer, was reset')
  t.equal(stats.requests.fresh['closed-unanswered'] + stats.requests['kept-alive']['closed-unanswered'], 0, 'no request was left unanswered')
  t.equal(stats.keptAliveAfterMark, 0, 'every answer to a request sent after readiness failed said Connection: close')
  t.ok(stats.requests['kept-alive']['answered-close'] > 0, 'requests on kept-alive connections were answered during the drain, closing them')
  t.equal(stats.closes.ended, stats.requests.fresh['answered-close'] + stats.requests['kept-alive']['answered-close'],
    'the server ended each connection after the answer that said close, with a FIN')
  t.same([...stats.statuses.keys()], [200], 'every answer was the list')
})
