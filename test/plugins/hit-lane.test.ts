/**
 * The hit lane (src/plugins/hit-lane.ts) answers fresh in-memory hits before Fastify: over real sockets,
 * what it answers must be what the route answers (headers, body, access line, metrics, rate-limit
 * count), and everything else must reach the route untouched.
 */
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { Scopes } from '../../src/auth/caller.js'
import { apiKeyEnv, issue, replaceApiKeyFile, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL, type TestApp } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { parseExposition, valueOf } from '../metrics/prometheus-text.js'

const TENANT = 'demo-shop'
const OTHER_TENANT = 'demo-bank'
// Differ between two answers of the same list by nature: when and to which request they were given.
const PER_ANSWER_HEADERS = new Set(['date', 'x-request-id'])
// Seconds-granular: two answers a moment apart may straddle a second.
const AGE_DEPENDENT = /(age|ttl)=?-?\d+/g
// Each app filled its own cache: the lists differ by when they were fetched, and so do their tags.
const PER_FILL = /"fetchedAt":"[^"]+"|"requestId":"[^"]+"/g
const PER_FILL_HEADERS = new Set(['etag', 'content-length'])

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

interface LaneApp extends TestApp {
  origin: string
  /** Requests the lane answered (it returned true) so far. */
  laneAnswers (): number
  get (path: string, headers?: Record<string, string>, method?: 'GET' | 'HEAD'): Promise<Answer>
}

async function startApp (t: Test, simulator: NxCloudSimulator, env: Record<string, string>, hitLane: boolean): Promise<LaneApp> {
  const built = await buildTestApp(t, testConfig(simulator, env), { hitLane })
  const { app } = built
  let answered = 0
  const slot = app.laneSlot
  const lane = slot?.lane
  if (slot !== undefined && lane !== undefined) {
    slot.lane = (req, res) => {
      const done = lane(req, res)
      if (done) answered++
      return done
    }
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const agent = new Agent({ connections: 1 })
  t.teardown(() => agent.close())
  return {
    ...built,
    origin,
    laneAnswers: () => answered,
    async get (path, headers = {}, method = 'GET') {
      const response = await request(`${origin}${path}`, { method, headers, dispatcher: agent })
      return { status: response.statusCode, headers: response.headers, body: await response.body.text() }
    },
  }
}

function comparable (answer: Answer) {
  const headers = Object.fromEntries(Object.entries(answer.headers)
    .filter(([name]) => !PER_ANSWER_HEADERS.has(name))
    .map(([name, value]) => [name, PER_FILL_HEADERS.has(name) ? typeof value : String(value).replace(AGE_DEPENDENT, '$1')]))
  return { status: answer.status, headers, body: answer.body.replace(PER_FILL, '') }
}

function accessLines (app: TestApp) {
  return app.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line['msg'] === 'request completed')
}

// The line without what differs by nature between two requests.
function comparableLine (line: Record<string, unknown> | undefined) {
  const { time: _time, pid: _pid, requestId: _requestId, responseTimeMs, ...rest } = line ?? {}
  return { ...rest, responseTimeMs: typeof responseTimeMs }
}

async function durationCount (app: FastifyInstance): Promise<number | undefined> {
  const { samples } = parseExposition(await app.metrics.registry.metrics())
  return valueOf(samples, 'nxcloud_bff_http_request_duration_seconds_count', { route: '/tenants/:appkey/phones', method: 'GET', status: '200' })
}

async function pairOfApps (t: Test, env: Record<string, string> = {}, readerLimit = 1000) {
  const simulator = await startSimulator(t)
  const reader = issue('lane-reader', [TENANT, OTHER_TENANT], [Scopes.phonesRead], readerLimit)
  const file = writeApiKeyFile(t, [reader.entry])
  const fullEnv = { ...apiKeyEnv(file), ...env }
  const withLane = await startApp(t, simulator, fullEnv, true)
  const withoutLane = await startApp(t, simulator, fullEnv, false)
  return { simulator, reader, file, withLane, withoutLane, auth: { 'x-api-key': reader.key } }
}

for (const [mode, env] of [['in-process cache', {}], ['Redis mode', { REDIS_URL: TEST_REDIS_URL }]] as const) {
  t.test(`${mode}: a fresh hit is answered by the lane exactly as the route answers it (headers, body, access line, metrics)`, async (t) => {
    const { withLane, withoutLane, auth } = await pairOfApps(t, env)
    const path = phonesUrl(TENANT)
    for (const app of [withLane, withoutLane]) {
      t.equal((await app.get(path, auth)).headers['x-cache'], 'MISS', 'the first request fills the cache')
    }
    t.equal(withLane.laneAnswers(), 0, 'a miss is the route\'s')
    const byLane = await withLane.get(path, auth)
    const byRoute = await withoutLane.get(path, auth)
    t.equal(withLane.laneAnswers(), 1, 'the hit was answered by the lane')
    t.equal(byLane.headers['x-cache'], 'HIT')
    t.same(comparable(byLane), comparable(byRoute), 'same status, headers and body')
    t.match(byLane.headers['x-request-id'], /^[\w-]+-[0-9a-z]+$/, 'the lane gives a request id of the same form')
    t.same(comparableLine(accessLines(withLane).at(-1)), comparableLine(accessLines(withoutLane).at(-1)), 'same access line')
    t.equal(accessLines(withLane).at(-1)?.['requestId'], byLane.headers['x-request-id'], 'the line names the answer\'s request id')
    t.equal(await durationCount(withLane.app), 2, 'the lane\'s answer is in the request metrics')
    t.equal(await durationCount(withoutLane.app), 2)

    const given = await withLane.get(path, { ...auth, 'x-request-id': 'trace-me-123' })
    t.equal(given.headers['x-request-id'], 'trace-me-123', 'a well-formed X-Request-Id is kept')
    t.equal(withLane.laneAnswers(), 2)
  })
}

t.test('whatever is not a plain fresh hit by a known caller reaches the route, which answers as without the lane', async (t) => {
  const { withLane, withoutLane, auth, reader, file } = await pairOfApps(t, { CORS_ORIGINS: 'https://frontend.example' })
  const path = phonesUrl(TENANT)
  for (const app of [withLane, withoutLane]) await app.get(path, auth)
  const stranger = issue('not-in-the-file', [TENANT])
  const cases: Array<[string, string, Record<string, string>, ('GET' | 'HEAD')?]> = [
    ['no credentials', path, {}],
    ['an unknown key', path, { 'x-api-key': stranger.key }],
    ['both credentials', path, { ...auth, authorization: 'Bearer x.y.z' }],
    ['a tenant the caller may not read', phonesUrl('demo-bakery'), auth],
    ['a conditional request', path, { ...auth, 'if-none-match': '*' }],
    ['a cross-origin request', path, { ...auth, origin: 'https://frontend.example' }],
    ['a query string', `${path}?x=1`, auth],
    ['a malformed appkey', phonesUrl('demo%20shop'), auth],
    ['HEAD', path, auth, 'HEAD'],
    ['a trailing slash', `${path}/`, auth],
  ]
  for (const [name, casePath, headers, method] of cases) {
    const before = withLane.laneAnswers()
    const byLane = await withLane.get(casePath, headers, method)
    const byRoute = await withoutLane.get(casePath, headers, method)
    t.equal(withLane.laneAnswers(), before, `${name}: not the lane's`)
    t.same(comparable(byLane), comparable(byRoute), `${name}: answered ${byRoute.status} as without the lane`)
  }

  // A known caller, a tenant it may read that is not cached: the lane counted it, the route answers it.
  const miss = await withLane.get(phonesUrl(OTHER_TENANT), auth)
  t.equal(miss.headers['x-cache'], 'MISS')

  // A revoked key stops at once: the lane knows only keys verified since the file was last read.
  replaceApiKeyFile(file, [])
  await t.resolves(waitUntil(async () => (await withLane.get(path, auth)).status === 401), 'the revoked key is refused')
  t.ok(reader.key.length > 0)
})

t.test('the rate limiter counts each request once, whichever answers it, and the lane leaves the refusal to the route', async (t) => {
  const { withLane, auth } = await pairOfApps(t, {}, 4)
  const remaining: Array<string | undefined> = []
  const statuses: number[] = []
  // A miss (route), a hit (lane), a miss of another tenant by a caller the lane knows (counted by the lane,
  // answered by the route), a hit (lane), then past the limit (route: 429).
  for (const path of [phonesUrl(TENANT), phonesUrl(TENANT), phonesUrl(OTHER_TENANT), phonesUrl(TENANT), phonesUrl(TENANT)]) {
    const answer = await withLane.get(path, auth)
    statuses.push(answer.status)
    remaining.push(/r=(\d+)/.exec(String(answer.headers['ratelimit']))?.[1])
  }
  t.same(statuses, [200, 200, 200, 200, 429])
  t.same(remaining, ['3', '2', '1', '0', '0'], 'one count per request')
  t.equal(withLane.laneAnswers(), 2, 'the two hits were the lane\'s')
})

t.test('the lane says Connection: close on the last answer a socket may carry, as the route does', async (t) => {
  const { withLane, withoutLane, auth } = await pairOfApps(t, { HTTP_MAX_REQUESTS_PER_SOCKET: '3' })
  for (const app of [withLane, withoutLane]) {
    const answers: Answer[] = []
    for (let index = 0; index < 3; index++) answers.push(await app.get(phonesUrl(TENANT), auth))
    t.same(answers.map((answer) => answer.headers['connection']), ['keep-alive', 'keep-alive', 'close'])
  }
  t.equal(withLane.laneAnswers(), 2)
})

async function waitUntil (check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

t.test('a lane that throws leaves the request to the route and logs the error; the process lives on', async (t) => {
  const { withLane, auth } = await pairOfApps(t)
  const slot = withLane.app.laneSlot
  if (slot === undefined) throw new Error('the lane app has no lane slot')
  slot.lane = () => { throw new Error('lane bug') }
  const answer = await withLane.get(phonesUrl(TENANT), auth)
  t.equal(answer.status, 200, 'answered by the route')
  t.ok(withLane.logs.some((line) => line.includes('the hit lane failed') && line.includes('lane bug')), 'the error is logged')
})
