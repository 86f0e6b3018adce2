import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import t from 'tap'
import type { Test } from 'tap'
import { Client, request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLOSE_AFTER_MS = 100
const POLL_INTERVAL_MS = 25
const STARTUP_DEADLINE_MS = 10_000
const EXIT_DEADLINE_MS = 10_000
// Far longer than the slow request, short enough that a hung close fails the test quickly.
const SHUTDOWN_TIMEOUT_MS = 3_000
const OUR_SHUTTING_DOWN_BODY = { status: 'shutting-down', checks: { redis: 'not-configured' } }
const FASTIFY_CLOSING_BODY = { error: 'Service Unavailable', message: 'Service Unavailable', statusCode: 503 }
// Only a guard against hanging the whole file; a healthy close takes milliseconds here.
const CLOSE_HANG_GUARD_MS = 3_000

interface PhoneList {
  appkey: string
  phones: unknown[]
  fetchedAt: string
}

async function waitFor (what: string, deadlineMs: number, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + deadlineMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(POLL_INTERVAL_MS)
  }
}

async function upstreamCalled (simulator: NxCloudSimulator): Promise<void> {
  await waitFor('the request to reach NxCloud', STARTUP_DEADLINE_MS, () => simulator.calls >= 1)
}

async function listeningApp (t: Test, simulator: NxCloudSimulator): Promise<{ app: FastifyInstance, origin: string }> {
  const { app } = await buildTestApp(t, testConfig(simulator))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, origin: `http://127.0.0.1:${port}` }
}

async function settlesWithin<T> (promise: Promise<T>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<false>((resolve) => { timer = setTimeout(resolve, ms, false) })
  try {
    return await Promise.race([promise.then(() => true), expired])
  } finally {
    clearTimeout(timer)
  }
}

t.test('closing the app lets the in-flight request finish and then refuses connections', async (t) => {
  const simulator = await startSimulator(t)
  const { app, origin } = await listeningApp(t, simulator)
  // The second request must arrive during close on a connection already open: pipelined behind the slow one.
  const keepAlive = new Client(origin, { pipelining: 2 })
  t.teardown(() => keepAlive.destroy())

  const inFlight = keepAlive.request({ method: 'GET', path: phonesUrl('sim-slow-500') })
  await upstreamCalled(simulator)
  await sleep(CLOSE_AFTER_MS)
  const closing = app.close()
  const readyDuringClose = keepAlive.request({ method: 'GET', path: '/readyz' }).then(
    async (response) => ({ status: response.statusCode, body: await response.body.json() }),
    (error: unknown) => ({ error })
  )

  const response = await inFlight
  t.equal(response.statusCode, 200, 'the in-flight request completes')
  const list = await response.body.json() as PhoneList
  t.equal(list.appkey, 'sim-slow-500')
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
    const inFlight = keepAlive.request({ method: 'GET', path: phonesUrl('sim-slow-300') })
    await upstreamCalled(simulator)
    const closing = app.close()

    const response = await inFlight
    t.equal(response.statusCode, 200, 'the in-flight request completes')
    t.equal((await response.body.json() as PhoneList).phones.length, 2, 'with its full body')
    t.equal(response.headers['connection'], 'close', 'the answer tells the client to close the connection')
    t.ok(await settlesWithin(closing, CLOSE_HANG_GUARD_MS), 'close completes while the client still holds its connection')
  } finally {
    await keepAlive.destroy()
  }
})

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

type ServerProcess = ChildProcessByStdio<null, Readable, Readable>

function spawnServer (t: Test, env: Record<string, string>): { child: ServerProcess, output: { stdout: string, stderr: string } } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const output = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk: Buffer) => { output.stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output.stderr += chunk.toString('utf8') })
  return { child, output }
}

async function exitOf (child: ServerProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the server did not exit in time')), EXIT_DEADLINE_MS)
    child.once('close', (code, signal) => {
      clearTimeout(deadline)
      resolve({ code, signal })
    })
  })
}

async function answersHealthz (origin: string): Promise<boolean> {
  try {
    const response = await request(`${origin}/healthz`)
    await response.body.dump()
    return response.statusCode === 200
  } catch {
    return false
  }
}

t.test('SIGTERM finishes the in-flight request, logs the shutdown and exits 0', async (t) => {
  const simulator = await startSimulator(t)
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const { child, output } = spawnServer(t, {
    PORT: String(port),
    HOST: '127.0.0.1',
    NXCLOUD_BASE_URL: simulator.url,
    NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
    NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
    NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
    AUTH_DISABLED: 'true',
    LOG_LEVEL: 'info',
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  })
  await waitFor('the server to listen', STARTUP_DEADLINE_MS, async () => {
    if (child.exitCode !== null) throw new Error(`the server exited early: ${output.stderr}`)
    return await answersHealthz(origin)
  })

  const inFlight = request(`${origin}${phonesUrl('sim-slow-800')}`)
  await upstreamCalled(simulator)
  t.ok(child.kill('SIGTERM'), 'SIGTERM delivered')

  const response = await inFlight
  t.equal(response.statusCode, 200, 'the in-flight request completes')
  const list = await response.body.json() as PhoneList
  t.equal(list.appkey, 'sim-slow-800')
  t.equal(list.phones.length, 2, 'with its full body')

  t.same(await exitOf(child), { code: 0, signal: null }, 'the process exits 0 on its own')
  const lines = output.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>)
  const shutdown = lines.find((line) => String(line['msg']).startsWith('shutting down'))
  t.match(shutdown, { level: 30, signal: 'SIGTERM', msg: /^shutting down/ }, 'a JSON log line announces the shutdown')
  t.ok(lines.some((line) => line['msg'] === 'request completed' && line['statusCode'] === 200 &&
    String(line['url']).includes('sim-slow-800')), 'the in-flight request is logged as completed')
  t.equal(output.stderr, '')
  t.equal(simulator.calls, 1)
})
