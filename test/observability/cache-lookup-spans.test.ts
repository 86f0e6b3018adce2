import t from 'tap'
import { startTracing } from '../../src/observability/start-tracing.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'
import { fakeDate } from '../support/fake-date.js'
import { logLineWith } from '../support/log-lines.js'
import { startOtlpReceiver } from './otlp-receiver.js'

// Tracing is started in this process, for good: its tests are alone in this file.

const TTL_SECONDS = 1
// Past the TTL on a fake Date: the service ages entries by Date.now(); spans are timed by performance.now(), which stays real.
const PAST_TTL_MS = TTL_SECONDS * 1000 + 100

t.test('the cache lookup span says what the cache held, from memory or from the store', async (t) => {
  const clock = fakeDate(t)
  const receiver = await startOtlpReceiver(t)
  const simulator = await startSimulator(t)
  const config = testConfig(simulator, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.endpoint}/`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    CACHE_TTL_SECONDS: String(TTL_SECONDS),
  })
  const tracing = await startTracing(config)
  if (tracing === undefined) throw new Error('tracing did not start')
  const { app, logs } = await buildTestApp(t, config)

  const requests = [
    { appkey: 'demo-shop', status: 200, result: 'miss' },
    { appkey: 'demo-shop', status: 200, result: 'hit' },
    { appkey: 'no-such-app', status: 404, result: 'miss' },
    { appkey: 'no-such-app', status: 404, result: 'negative' },
    { appkey: 'demo-shop', status: 200, result: 'stale', afterTtl: true },
  ]
  for (const [index, { appkey, status, afterTtl }] of requests.entries()) {
    if (afterTtl === true) clock.tick(PAST_TTL_MS)
    const response = await app.inject({ url: phonesUrl(appkey), headers: { 'x-request-id': `lookup-${index}` } })
    t.equal(response.statusCode, status)
  }
  await tracing.shutdown()

  const traceIdOf = (requestId: string) => logLineWith(logs, (line) => line.requestId === requestId && line.msg === 'request completed')?.['traceId']
  for (const [index, { appkey, result }] of requests.entries()) {
    const traceId = traceIdOf(`lookup-${index}`)
    const lookups = receiver.spans.filter((span) => span.traceId === traceId && span.name === 'cache.lookup')
    t.same(lookups.map((span) => span.attributes['cache.result']), [result], `request ${index + 1} (${appkey}) finds ${result}`)
  }
})
