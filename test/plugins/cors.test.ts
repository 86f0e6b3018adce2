import t from 'tap'
import { request } from 'undici'
import { BROWSER_READABLE_HEADERS, HttpHeaders } from '../../src/http/headers.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from '../helper.js'

const FRONTEND = 'https://app.example.com'

function listOf (header: string | string[] | undefined): string[] {
  return String(header).toLowerCase().split(',').map((name) => name.trim())
}

t.test('a browser on an allowed origin may read the headers that describe an answer, the rate-limit fields included', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { CORS_ORIGINS: FRONTEND }))
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const answer = await request(`${origin}${phonesUrl('demo-shop')}`, { headers: { origin: FRONTEND } })
  await answer.body.dump()
  t.equal(answer.statusCode, 200)
  t.equal(answer.headers['access-control-allow-origin'], FRONTEND)
  const exposed = listOf(answer.headers['access-control-expose-headers'])
  t.same([...exposed].sort(), [...BROWSER_READABLE_HEADERS].sort(), 'exactly the fields marked readable')
  for (const field of [HttpHeaders.rateLimitLimit, HttpHeaders.rateLimitRemaining, HttpHeaders.rateLimitReset, HttpHeaders.retryAfter, HttpHeaders.requestId, HttpHeaders.etag]) {
    t.ok(exposed.includes(field.name), `${field.name} is exposed`)
  }
})

t.test('a preflight from an allowed origin may send the credentials, a request id and a conditional tag', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { CORS_ORIGINS: FRONTEND }))
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const answer = await request(`${origin}${phonesUrl('demo-shop')}`, {
    method: 'OPTIONS',
    headers: { origin: FRONTEND, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' },
  })
  await answer.body.dump()
  t.equal(answer.statusCode, 204)
  t.same(listOf(answer.headers['access-control-allow-headers']).sort(), ['authorization', 'if-none-match', 'x-api-key', 'x-request-id'])
})

t.test('another origin is not told it may read anything', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { CORS_ORIGINS: FRONTEND }))
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const answer = await request(`${origin}${phonesUrl('demo-shop')}`, { headers: { origin: 'https://evil.example.net' } })
  await answer.body.dump()
  t.equal(answer.headers['access-control-allow-origin'], undefined)
})
