import t from 'tap'
import { Pool, request } from 'undici'
import { phonesUrl, startSimulator } from '../helper.js'
import { exitOf, freePort, startServerProcess } from '../server/server-process.js'
import { parseLogLines, waitForLogLine } from '../support/log-lines.js'
import { parseExposition } from './prometheus-text.js'

// The real process, as a container runs it: METRICS_PORT decides whether a second listener exists.

t.test('METRICS_PORT set: the process serves GET /metrics on that port only, and closes it when it stops', async (t) => {
  const simulator = await startSimulator(t)
  const metricsPort = await freePort()
  const { child, output, origin } = await startServerProcess(t, simulator, {
    METRICS_PORT: String(metricsPort),
    SHUTDOWN_DRAIN_DELAY_MS: '0',
  })
  t.equal((await request(`${origin}${phonesUrl('demo-shop')}`)).statusCode, 200)

  // A kept-alive scraper connection, as Prometheus holds one: it must not keep the process from exiting.
  const scraper = new Pool(`http://127.0.0.1:${metricsPort}`)
  t.teardown(() => scraper.destroy())
  const scrape = await scraper.request({ method: 'GET', path: '/metrics' })
  t.equal(scrape.statusCode, 200)
  const { samples } = parseExposition(await scrape.body.text())
  t.ok(samples.some((sample) => sample.name === 'nxcloud_bff_cache_lookups_total' && sample.labels['result'] === 'miss' && sample.value === 1),
    'the process counted its miss')
  t.ok(samples.some((sample) => sample.name === 'process_cpu_user_seconds_total'), 'and its own process series')

  const onPublic = await request(`${origin}/metrics`)
  await onPublic.body.dump()
  t.equal(onPublic.statusCode, 404, 'the public listener has no /metrics')

  const listening = await waitForLogLine(output, (line) => line.msg === 'metrics listening', 'the metrics log line')
  t.match(listening, { metrics: { port: metricsPort } })

  const exited = exitOf(child)
  child.kill('SIGTERM')
  t.same(await exited, { code: 0, signal: null }, 'the process exits 0 with a scraper still connected')
  t.equal(output.stderr, '')
})

t.test('METRICS_PORT=0: no metrics listener, and the log says so', async (t) => {
  const simulator = await startSimulator(t)
  const { child, output } = await startServerProcess(t, simulator, { METRICS_PORT: '0', SHUTDOWN_DRAIN_DELAY_MS: '0' })
  const exited = exitOf(child)
  child.kill('SIGTERM')
  t.same(await exited, { code: 0, signal: null })
  const messages = parseLogLines(output).map((line) => line.msg)
  t.ok(messages.includes('metrics listener off (METRICS_PORT=0)'))
  t.notOk(messages.includes('metrics listening'))
})
