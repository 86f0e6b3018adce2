import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Writable } from 'node:stream'
import t from 'tap'
import { destination, pino } from 'pino'
import { request } from 'undici'
import { buildApp } from '../../src/app.js'
import { phonesUrl, startSimulator, testConfig } from '../helper.js'
import { exitOf, logLinesOf, startServerProcess, waitFor } from '../server/server-process.js'

// The fields of an access line, in the order pino writes them for the same call.
const ACCESS_LINE_KEYS = ['level', 'time', 'pid', 'hostname', 'requestId', 'method', 'url', 'statusCode', 'responseTimeMs', 'cache', 'msg']

function memoryStream (): { stream: Writable, text: () => string } {
  let text = ''
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { text += chunk.toString('utf8'); done() } })
  return { stream, text: () => text }
}

t.test('an access line is the line pino writes for the same fields, byte for byte', async (t) => {
  const simulator = await startSimulator(t)
  const { stream, text } = memoryStream()
  const app = await buildApp(testConfig(simulator), { logStream: stream })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const url = `${phonesUrl('demo-shop')}?q=%22quoted%22&x=\\`
  for (let answered = 0; answered < 2; answered++) {
    const response = await request(`http://127.0.0.1:${port}${url}`, { headers: { 'x-request-id': `access-${answered}` } })
    await response.body.dump()
  }
  const lines = text().split('\n').filter((line) => line.includes('"request completed"'))
  t.equal(lines.length, 2, 'one line per request')
  const hit = JSON.parse(lines[1]!) as Record<string, unknown>
  t.same(Object.keys(hit), ACCESS_LINE_KEYS)
  t.match(hit, { level: 30, requestId: 'access-1', method: 'GET', url, statusCode: 200, cache: 'HIT', msg: 'request completed' })
  t.type(hit['responseTimeMs'], 'number')

  const { stream: pinoStream, text: pinoText } = memoryStream()
  const { msg, level, time, pid, hostname, ...fields } = hit
  pino({ timestamp: () => `,"time":${String(time)}` }, pinoStream).info(fields, String(msg))
  t.equal(`${lines[1]!}\n`, pinoText(), 'pino writes the same bytes')
})

t.test('the request logger is a whole pino logger: every method a plugin may call works', async (t) => {
  const simulator = await startSimulator(t)
  const { stream, text } = memoryStream()
  const app = await buildApp(testConfig(simulator, { LOG_LEVEL: 'debug' }), { logStream: stream })
  t.teardown(() => app.close())
  let seen: Record<string, unknown> = {}
  app.get('/logger-api', (request, reply) => {
    const log = request.log as unknown as pino.Logger
    seen = {
      level: log.level,
      infoEnabled: log.isLevelEnabled('info'),
      traceEnabled: log.isLevelEnabled('trace'),
      bindingsBefore: log.bindings(),
    }
    log.setBindings({ plugin: 'third-party' })
    seen['bindingsAfter'] = log.bindings()
    log.child({ step: 'inner' }).info('from a child')
    log.debug({ detail: 1 }, 'from the request logger')
    log.flush()
    reply.send({ ok: true })
  })
  await app.ready()
  const response = await app.inject({ url: '/logger-api', headers: { 'x-request-id': 'logger-api-1' } })
  t.equal(response.statusCode, 200)
  t.same(seen, {
    level: 'debug',
    infoEnabled: true,
    traceEnabled: false,
    bindingsBefore: { requestId: 'logger-api-1' },
    bindingsAfter: { requestId: 'logger-api-1', plugin: 'third-party' },
  })
  const lines = text().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(lines.find((line) => line['msg'] === 'from a child'), { requestId: 'logger-api-1', plugin: 'third-party', step: 'inner' })
  t.match(lines.find((line) => line['msg'] === 'from the request logger'), { requestId: 'logger-api-1', detail: 1, level: 20 })
})

t.test('a route level above info keeps its successful answers out of the access log', async (t) => {
  const simulator = await startSimulator(t)
  const { stream, text } = memoryStream()
  const app = await buildApp(testConfig(simulator), { logStream: stream })
  t.teardown(() => app.close())
  await app.ready()
  await app.inject('/healthz')
  await app.inject(phonesUrl('demo-shop'))
  const completed = text().split('\n').filter((line) => line.includes('"request completed"'))
  t.equal(completed.length, 1)
  t.match(completed[0], /"url":"\/tenants\/demo-shop\/phones"/)
})

t.test('buffered lines are written by close()', async (t) => {
  const simulator = await startSimulator(t)
  const dir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'out.log')
  // The production destination: buffered, far larger than the lines of these requests.
  const logStream = destination({ dest: file, sync: false, minLength: 16_384, maxWrite: 65_536, mkdir: true })
  await new Promise((resolve) => logStream.once('ready', resolve))
  const app = await buildApp(testConfig(simulator), { logStream })
  await app.ready()
  for (let i = 0; i < 5; i++) await app.inject(phonesUrl('demo-shop'))
  t.equal(readFileSync(file, 'utf8'), '', 'nothing written while the buffer has room')
  await app.close()
  const completed = readFileSync(file, 'utf8').split('\n').filter((line) => line.includes('"request completed"'))
  t.equal(completed.length, 5, 'every line written once close() returns')
})

t.test('the process writes its lines while it runs, and all of them on SIGTERM', async (t) => {
  const simulator = await startSimulator(t)
  const server = await startServerProcess(t, simulator, { SHUTDOWN_DRAIN_DELAY_MS: '0' })
  const countCompleted = () => logLinesOf(server.output).filter((line) => line['msg'] === 'request completed' && line['url'] === phonesUrl('demo-shop')).length
  const first = await request(`${server.origin}${phonesUrl('demo-shop')}`)
  await first.body.dump()
  // Eventually, without a flush of the process: how soon is the bench's to print, not a test's to bound.
  await waitFor('the access line of a served request', 30_000, () => countCompleted() === 1)
  t.pass('the line was written while the process runs')

  const more = 20
  for (let i = 0; i < more; i++) {
    const response = await request(`${server.origin}${phonesUrl('demo-shop')}`)
    await response.body.dump()
  }
  server.child.kill('SIGTERM')
  const exit = await exitOf(server.child)
  t.equal(exit.code, 0)
  await sleep(50)
  t.equal(countCompleted(), 1 + more, 'no line lost on a clean stop')
})
