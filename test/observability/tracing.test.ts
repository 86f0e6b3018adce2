import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { request } from 'undici'
import { ConfigError, loadConfig } from '../../src/config.js'
import { startTracing } from '../../src/observability/start-tracing.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { authEnv, startJwksFixture } from '../auth/jwks-fixture.js'
import { buildTestApp, deleteKeysWithPrefix, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL, uniqueKeyPrefix } from '../helper.js'
import { DEMO_ACCESS_KEY } from '../simulator/demo-tenants.js'
import { exitOf, startServerProcess } from '../server/server-process.js'
import { eventually } from '../support/eventually.js'
import { logLinesWith, waitForLogLine } from '../support/log-lines.js'
import { startOtlpReceiver, type ReceivedSpan } from './otlp-receiver.js'

const SPAN_KIND_SERVER = 2
const SPAN_KIND_CLIENT = 3

function ancestorsOf (span: ReceivedSpan, spans: ReceivedSpan[]): ReceivedSpan[] {
  const ancestors: ReceivedSpan[] = []
  let parent = spans.find((candidate) => candidate.spanId === span.parentSpanId)
  while (parent !== undefined) {
    ancestors.push(parent)
    const child: ReceivedSpan = parent
    parent = spans.find((candidate) => candidate.spanId === child.parentSpanId)
  }
  return ancestors
}

t.test('one request makes one trace: the caller\'s, through the cache lookup to the NxCloud call, without a secret', async (t) => {
  const secret = `s3cr3t-${randomUUID()}`
  const simulator = await startSimulator(t, { accessSecret: secret })
  const receiver = await startOtlpReceiver(t)
  const jwks = await startJwksFixture(t)
  const apiKey = issue('tracing-test', ['demo-shop'])
  const bearerToken = await jwks.sign({ appkeys: ['demo-bank'] })
  const keyPrefix = uniqueKeyPrefix()
  t.teardown(() => deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix))
  const server = await startServerProcess(t, simulator, {
    NXCLOUD_ACCESS_SECRET: secret,
    REDIS_URL: TEST_REDIS_URL,
    CACHE_KEY_PREFIX: keyPrefix,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    ...apiKeyEnv(writeApiKeyFile(t, [apiKey.entry])),
    ...authEnv(jwks),
    SHUTDOWN_DRAIN_DELAY_MS: '0',
  })

  // The caller's trace: the service's request span must continue it.
  const callerTraceId = randomBytes(16).toString('hex')
  const callerSpanId = randomBytes(8).toString('hex')
  const requestId = `tracing-${randomUUID()}`
  const withApiKey = await request(`${server.origin}${phonesUrl('demo-shop')}`, {
    headers: { 'x-api-key': apiKey.key, traceparent: `00-${callerTraceId}-${callerSpanId}-01`, 'x-request-id': requestId },
  })
  await withApiKey.body.dump()
  t.equal(withApiKey.statusCode, 200)
  t.equal(withApiKey.headers['x-cache'], 'MISS', 'the list came from NxCloud')
  const withToken = await request(`${server.origin}${phonesUrl('demo-bank')}`, { headers: { authorization: `Bearer ${bearerToken}` } })
  await withToken.body.dump()
  t.equal(withToken.statusCode, 200)
  // A refusal is answered by the error handler, not the route: its access line must carry a trace id all the same.
  const refusedId = `tracing-refused-${randomUUID()}`
  const refused = await request(`${server.origin}${phonesUrl('demo-bank')}`, { headers: { 'x-api-key': apiKey.key, 'x-request-id': refusedId } })
  await refused.body.dump()
  t.equal(refused.statusCode, 403)

  const inCallerTrace = () => receiver.spans.filter((span) => span.traceId === callerTraceId)
  const requestSpanOf = (spans: ReceivedSpan[]) => spans.find((span) => span.scope === '@fastify/otel')
  await eventually(() =>
    requestSpanOf(inCallerTrace()) !== undefined && inCallerTrace().some((span) => span.name === 'nxcloud.phoneList') &&
    receiver.spans.filter((span) => span.name === 'nxcloud.phoneList').length === 2,
  { what: 'the request span and the NxCloud call to be exported' })
  const trace = inCallerTrace()
  const requestSpan = requestSpanOf(trace)
  if (requestSpan === undefined) throw new Error('no request span')

  t.equal(requestSpan.parentSpanId, callerSpanId, 'the request span is a child of the caller\'s span')
  t.equal(requestSpan.kind, SPAN_KIND_SERVER)
  t.equal(requestSpan.name, 'GET /tenants/:appkey/phones')
  t.equal(requestSpan.attributes['http.route'], '/tenants/:appkey/phones')
  t.equal(requestSpan.attributes['http.response.status_code'], 200)

  const lookup = trace.find((span) => span.name === 'cache.lookup')
  t.equal(lookup?.parentSpanId, requestSpan.spanId, 'the cache lookup is a child of the request span')
  t.equal(lookup?.attributes['cache.result'], 'miss')

  const call = trace.find((span) => span.name === 'nxcloud.phoneList')
  if (call === undefined) throw new Error('no NxCloud call span')
  t.ok(ancestorsOf(call, trace).includes(requestSpan), 'the NxCloud call descends from the request span')
  t.same(call.attributes, { 'nxcloud.attempt': 1, 'nxcloud.code': 0, 'http.response.status_code': 200 })
  const upstreamRequest = trace.find((span) => span.scope.endsWith('instrumentation-undici') && span.parentSpanId === call.spanId)
  t.equal(upstreamRequest?.kind, SPAN_KIND_CLIENT, 'the HTTP request to NxCloud is a client span under the call')
  t.equal(upstreamRequest?.attributes['url.full'], `${simulator.url}/api/wa/integrator/embedded/register/phoneList`)

  const redisCommands = trace.filter((span) => span.scope.endsWith('instrumentation-ioredis'))
  t.ok(redisCommands.length > 0, 'the Redis commands of the request are traced')
  for (const command of redisCommands) {
    t.equal(command.attributes['db.query.text'], command.name, `${command.name} is recorded without its arguments`)
  }

  const secrets = { 'the access secret': secret, 'the API key': apiKey.key, 'the bearer token': bearerToken, 'the access key': DEMO_ACCESS_KEY }
  t.equal(simulator.receivedSigns.length, 2)
  simulator.receivedSigns.forEach((sign, index) => { Reflect.set(secrets, `sign #${index + 1}`, sign) })
  const exported = receiver.bodies.join('\n')
  for (const [name, value] of Object.entries(secrets)) t.notOk(exported.includes(value), `no span holds ${name}`)

  const accessLineOf = (id: string) => waitForLogLine(server.output, (line) => line.requestId === id && line.msg === 'request completed',
    `the access line of ${id} to be flushed`)
  await accessLineOf(requestId)
  const lines = logLinesWith(server.output, (line) => line.requestId === requestId)
  t.same(lines.map((line) => line.msg), ['nxcloud call', 'request completed'], 'the NxCloud call and the access line')
  for (const line of lines) t.equal(line['traceId'], callerTraceId, `"${String(line.msg)}" carries the trace id`)
  t.equal(lines[0]?.['spanId'], call.spanId, 'the NxCloud call line carries its span id')
  const refusedLine = await accessLineOf(refusedId)
  t.match(refusedLine, { statusCode: 403, traceId: /^[0-9a-f]{32}$/ }, 'the access line of a refused request carries its trace id')
  await eventually(() => receiver.spans.some((span) => span.traceId === refusedLine['traceId'] && span.scope === '@fastify/otel'),
    { what: 'the refused request\'s span to be exported' })

  // Shutting down logs outside any span, then flushes the spans still buffered.
  server.child.kill('SIGTERM')
  t.same(await exitOf(server.child), { code: 0, signal: null }, 'the process exits cleanly')
  t.notOk(server.output.stderr.includes('Error'), 'and wrote no error')
})

t.test('without an OTLP endpoint nothing traces: no request plugin, no trace ids in the logs', async (t) => {
  const simulator = await startSimulator(t)
  const { app, logs } = await buildTestApp(t, testConfig(simulator))
  t.notOk(app.hasPlugin('@fastify/otel'))
  const response = await app.inject({ url: phonesUrl('demo-shop'), headers: { traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` } })
  t.equal(response.statusCode, 200)
  t.ok(logs.length > 0)
  t.notOk(logs.some((line) => line.includes('traceId')), 'no log line carries a trace id')
})

t.test('tracing is off until an endpoint is set; the endpoints are URLs and the protocol one of the two HTTP ones', async (t) => {
  const env = { NXCLOUD_ACCESS_KEY: 'live-access-key', NXCLOUD_ACCESS_SECRET: 'live-secret-value', AUTH_DISABLED: 'true' }
  const defaults = loadConfig(env)
  t.match(defaults, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_SERVICE_NAME: 'nxcloud-bff' })
  t.equal(await startTracing(defaults), undefined, 'no endpoint: no SDK')
  t.equal(await startTracing(loadConfig({ ...env, OTEL_EXPORTER_OTLP_ENDPOINT: ' ' })), undefined, 'an empty endpoint is unset')
  const refused = (() => {
    try {
      loadConfig({
        ...env,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'otel-collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector/v1/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      })
    } catch (error) {
      return error
    }
    return undefined
  })()
  t.ok(refused instanceof ConfigError)
  t.same((refused as ConfigError).problems, [
    'OTEL_EXPORTER_OTLP_ENDPOINT="otel-collector:4318" must match ^https?://',
    'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="collector/v1/traces" must match ^https?://',
    'OTEL_EXPORTER_OTLP_PROTOCOL="grpc" must be one of http/protobuf, http/json',
  ])
})
