import { createPublicKey, type JsonWebKey } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { SignJWT } from 'jose'
import { PROBLEM_CONTENT_TYPE } from '../../src/errors/problem-schema.js'
import { ProblemTypes, type ProblemKind } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, type TestApp } from '../helper.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { fakeDate } from '../support/fake-date.js'
import { logLineWith, waitForLogLine } from '../support/log-lines.js'
import {
  authEnv,
  FIXTURE_COOLDOWN_MS,
  FIXTURE_SUBJECT,
  nowSeconds,
  startJwksFixture,
  type JwksAvailability,
  type JwksFixture,
  type SigningAlgorithm,
  type TokenClaims,
} from './jwks-fixture.js'

const REALM_CHALLENGE = 'Bearer realm="nxcloud-bff"'
const CLOCK_TOLERANCE_SECONDS = 30
// Past the fixture's refetch cooldown, so a lookup of an unknown kid would be free to refetch. The tests
// move a fake Date this far (the verifier times its cooldown with Date.now()) rather than sleep it out.
const PAST_COOLDOWN_MS = FIXTURE_COOLDOWN_MS + 1
// Far longer than any test: no refetch can be caused by unknown kids once the start fetch happened.
const LONG_COOLDOWN_MS = '60000'
const UNPUBLISHED_KID = 'never-published'

interface Harness extends TestApp {
  simulator: NxCloudSimulator
  jwks: JwksFixture
}

/** What the tests look at in an answer, whether it came from `inject` or over a socket. */
interface Answer {
  status: number
  header (name: string): string | undefined
  body: string
}

interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  requestId: string
}

async function startHarness (t: Test, env: Record<string, string> = {}): Promise<Harness> {
  const simulator = await startSimulator(t)
  const jwks = await startJwksFixture(t)
  const testApp = await buildTestApp(t, testConfig(simulator, authEnv(jwks, env)))
  return { ...testApp, simulator, jwks }
}

/** The key set fetch every app makes at start, done: later counts are about what requests caused. */
async function startedHarness (t: Test, env: Record<string, string> = {}): Promise<Harness> {
  const harness = await startHarness(t, env)
  await harness.jwks.waitForFetches(1)
  return harness
}

async function get (app: FastifyInstance, appkey: string, token: string | undefined): Promise<Answer> {
  const response = await app.inject({
    url: phonesUrl(appkey),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  })
  return {
    status: response.statusCode,
    header: (name) => {
      const value = response.headers[name.toLowerCase()]
      return value === undefined ? undefined : String(value)
    },
    body: response.body,
  }
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

async function fetchOverSocket (baseUrl: string, appkey: string, token: string): Promise<Answer> {
  const response = await fetch(`${baseUrl}${phonesUrl(appkey)}`, { headers: { authorization: `Bearer ${token}` } })
  const body = await response.text()
  return { status: response.status, header: (name) => response.headers.get(name) ?? undefined, body }
}

/** Neither a whole token nor its signature (the part that makes it a credential) may leak. */
function assertSecretsAbsent (t: Test, text: string, tokens: string[], where: string): void {
  for (const token of tokens) {
    t.notOk(text.includes(token), `${where} does not contain the token`)
    const signature = token.split('.')[2] ?? ''
    if (signature.length > 0) t.notOk(text.includes(signature), `${where} does not contain the token's signature`)
  }
}

function assertTokensNotLogged (t: Test, logs: string[], tokens: string[]): void {
  t.ok(logs.length > 0, 'the app wrote log lines')
  assertSecretsAbsent(t, logs.join('\n'), tokens, 'the log')
}

function assertProblem (t: Test, answer: Answer, kind: ProblemKind, token?: string): ProblemBody {
  const { status, type, title } = ProblemTypes[kind]
  t.equal(answer.status, status, `${status} ${type}`)
  t.match(answer.header('content-type'), new RegExp(`^${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}`), 'a problem+json content type')
  const problem = JSON.parse(answer.body) as ProblemBody
  t.equal(problem.type, type)
  t.equal(problem.title, title)
  t.equal(problem.status, status)
  if (token !== undefined) assertSecretsAbsent(t, answer.body, [token], 'the problem body')
  return problem
}

function assertInvalidToken (t: Test, answer: Answer, token: string): ProblemBody {
  const problem = assertProblem(t, answer, 'unauthenticated', token)
  const challenge = answer.header('www-authenticate') ?? ''
  t.ok(challenge.startsWith(REALM_CHALLENGE), `WWW-Authenticate starts with ${REALM_CHALLENGE} (got ${challenge})`)
  t.ok(challenge.includes('error="invalid_token"'), 'WWW-Authenticate says invalid_token')
  assertSecretsAbsent(t, challenge, [token], 'WWW-Authenticate')
  return problem
}

function base64urlJson (value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url')
}

function decodePart (part: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
}

t.test('a valid token over a real socket: 200, callerId jwt:<sub> in the access log, the token in no log line', async (t) => {
  const { app, logs, jwks, simulator } = await startHarness(t)
  const baseUrl = await listen(app)
  const token = await jwks.sign({ appkeys: ['demo-shop'], scope: 'phones:read' })

  const answer = await fetchOverSocket(baseUrl, 'demo-shop', token)
  t.equal(answer.status, 200)
  t.equal(answer.header('x-cache'), 'MISS')
  const body = JSON.parse(answer.body) as { appkey: string, phones: unknown[] }
  t.equal(body.appkey, 'demo-shop')
  t.equal(body.phones.length, 2)
  t.equal(simulator.calls, 1)

  // The access log line is written once the answer has gone out: over a socket, wait for it.
  const line = await waitForLogLine(logs, (line) => line.msg === 'request completed' && line.url === phonesUrl('demo-shop'), 'the access line')
  t.equal(line.statusCode, 200)
  t.equal(line['callerId'], `jwt:${FIXTURE_SUBJECT}`, 'the access log names the caller by its sub')
  assertTokensNotLogged(t, logs, [token])
})

t.test('the same token again is answered from the verified-token cache, without another verification', async (t) => {
  const clock = fakeDate(t)
  const { app, jwks, logs } = await startedHarness(t)
  const token = await jwks.sign()

  t.equal((await get(app, 'demo-shop', token)).status, 200)
  t.equal(jwks.fetches, 1, 'the keys fetched at start served the first verification')
  const again = await get(app, 'demo-shop', token)
  t.equal(again.status, 200)
  t.equal(again.header('x-cache'), 'HIT')
  t.equal(jwks.fetches, 1, 'the key set was not fetched again')

  // Proof that the repeat is not verified again: withdraw the key that signed it, make the service
  // take the new key set, and the remembered token still passes while a fresh one of that key fails.
  const withdrawn = jwks.current.kid
  await jwks.rotate({ keepOld: false })
  clock.tick(PAST_COOLDOWN_MS)
  t.equal((await get(app, 'demo-shop', await jwks.sign())).status, 200, 'a token of the new key makes the service refetch')
  t.equal(jwks.fetches, 2)
  t.equal((await get(app, 'demo-shop', token)).status, 200, 'the remembered token passes until its exp')
  const fresh = await jwks.sign({}, { key: withdrawn })
  assertInvalidToken(t, await get(app, 'demo-shop', fresh), fresh)
  assertTokensNotLogged(t, logs, [token, fresh])
})

t.test('an expired token is refused (over a real socket); one expired less than the clock tolerance ago is accepted', async (t) => {
  const { app, jwks, logs, simulator } = await startHarness(t)
  const baseUrl = await listen(app)
  const now = nowSeconds()
  const expired = await jwks.sign({ iat: now - 600, exp: now - CLOCK_TOLERANCE_SECONDS - 30 })

  const answer = await fetchOverSocket(baseUrl, 'demo-shop', expired)
  const problem = assertInvalidToken(t, answer, expired)
  t.equal(problem.instance, phonesUrl('demo-shop'))
  t.equal(simulator.calls, 0, 'NxCloud was not called')

  const withinTolerance = await jwks.sign({ iat: now - 600, exp: now - 10 })
  t.equal((await fetchOverSocket(baseUrl, 'demo-shop', withinTolerance)).status, 200, 'expired 10 s ago: within the 30 s tolerance')

  const warning = await waitForLogLine(logs, (line) => line.msg === 'authentication failed', 'the authentication failure\'s line')
  t.match(warning, { auth: { reason: 'expired', scheme: 'bearer' } }, 'the failure is logged with its reason')
  assertTokensNotLogged(t, logs, [expired, withinTolerance])
})

t.test('a token not valid yet (nbf 5 minutes ahead) is refused; nbf within the tolerance is accepted', async (t) => {
  const { app, jwks, logs } = await startHarness(t)
  const now = nowSeconds()
  const early = await jwks.sign({ nbf: now + 300, exp: now + 600 })
  assertInvalidToken(t, await get(app, 'demo-shop', early), early)
  t.equal((await get(app, 'demo-shop', await jwks.sign({ nbf: now + 10 }))).status, 200)
  assertTokensNotLogged(t, logs, [early])
})

t.test('a token of another issuer or for another audience is refused', async (t) => {
  const { app, jwks, logs, simulator } = await startHarness(t)
  const wrongIssuer = await jwks.sign({ iss: 'https://evil.example/' })
  const wrongAudience = await jwks.sign({ aud: 'another-service' })
  const noIssuer = await jwks.sign({ iss: undefined })
  assertInvalidToken(t, await get(app, 'demo-shop', wrongIssuer), wrongIssuer)
  assertInvalidToken(t, await get(app, 'demo-shop', wrongAudience), wrongAudience)
  assertInvalidToken(t, await get(app, 'demo-shop', noIssuer), noIssuer)
  t.equal(simulator.calls, 0)
  t.equal((await get(app, 'demo-shop', await jwks.sign({ aud: ['another-service', jwks.audience] }))).status, 200,
    'an audience list naming this service is accepted')
  assertTokensNotLogged(t, logs, [wrongIssuer, wrongAudience, noIssuer])
})

t.test('an unsecured token (alg none) is refused and makes the service ask the JWKS for nothing', async (t) => {
  const clock = fakeDate(t)
  const { app, jwks, logs, simulator } = await startedHarness(t)
  clock.tick(PAST_COOLDOWN_MS)
  const payload = base64urlJson(jwks.claims({ appkeys: '*' }))
  const headers = [{ alg: 'none' }, { alg: 'none', typ: 'JWT', kid: jwks.current.kid }, { alg: 'none', kid: UNPUBLISHED_KID }]
  for (const header of headers) {
    const token = `${base64urlJson(header)}.${payload}.`
    assertInvalidToken(t, await get(app, 'demo-shop', token), token)
  }
  t.equal(jwks.fetches, 1, 'only the start fetch: not even an unknown kid made the service look for keys')
  t.equal(simulator.calls, 0)
  t.notOk(logs.some((line) => line.includes(payload)), 'the unsecured token is not logged')
})

t.test('an HS256 token keyed with the public key (algorithm confusion) is refused', async (t) => {
  const algs: SigningAlgorithm[] = ['ES256', 'RS256']
  for (const alg of algs) {
    await t.test(alg, async (t) => {
      const clock = fakeDate(t)
      const simulator = await startSimulator(t)
      const jwks = await startJwksFixture(t, { alg })
      const { app, logs } = await buildTestApp(t, testConfig(simulator, authEnv(jwks)))
      await jwks.waitForFetches(1)
      clock.tick(PAST_COOLDOWN_MS)
      const { publicJwk, kid } = jwks.current
      const spkiPem = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
      const secrets = { 'the public JWK': JSON.stringify(publicJwk), 'the SPKI PEM': spkiPem }
      const tokens: string[] = []
      for (const [name, secret] of Object.entries(secrets)) {
        for (const headerKid of [kid, UNPUBLISHED_KID]) {
          const token = await new SignJWT(jwks.claims({ appkeys: '*' }))
            .setProtectedHeader({ alg: 'HS256', kid: headerKid, typ: 'JWT' })
            .sign(new TextEncoder().encode(secret))
          tokens.push(token)
          t.comment(`HS256 keyed with ${name}, kid ${headerKid === kid ? 'of the real key' : 'unpublished'}`)
          assertInvalidToken(t, await get(app, 'demo-bank', token), token)
        }
      }
      t.equal(jwks.fetches, 1, 'refused before any key lookup: no refetch for the unpublished kid')
      t.equal(simulator.calls, 0)
      t.equal((await get(app, 'demo-shop', await jwks.sign())).status, 200, `a genuine ${alg} token of the same key passes`)
      assertTokensNotLogged(t, logs, tokens)
    })
  }
})

t.test('a token whose payload was altered after signing is refused', async (t) => {
  const { app, jwks, logs, simulator } = await startHarness(t)
  const token = await jwks.sign({ appkeys: ['demo-shop'] })
  const [header = '', payload = '', signature = ''] = token.split('.')

  const widened = `${header}.${base64urlJson({ ...decodePart(payload), appkeys: '*' })}.${signature}`
  assertInvalidToken(t, await get(app, 'demo-bank', widened), widened)

  // One character of the payload changed, signature kept.
  const index = payload.length - 2
  const flipped = payload[index] === 'A' ? 'B' : 'A'
  const oneCharacter = `${header}.${payload.slice(0, index)}${flipped}${payload.slice(index + 1)}.${signature}`
  assertInvalidToken(t, await get(app, 'demo-shop', oneCharacter), oneCharacter)

  const strippedSignature = `${header}.${payload}.`
  assertInvalidToken(t, await get(app, 'demo-shop', strippedSignature), strippedSignature)

  t.equal(simulator.calls, 0)
  t.equal((await get(app, 'demo-shop', token)).status, 200, 'the untouched token passes')
  assertTokensNotLogged(t, logs, [widened, oneCharacter, token])
})

t.test('a token without exp, or without sub, is refused', async (t) => {
  const { app, jwks, logs } = await startHarness(t)
  const noExp = await jwks.sign({ exp: undefined })
  const noSub = await jwks.sign({ sub: undefined })
  t.notOk('exp' in decodePart(noExp.split('.')[1]), 'the token really has no exp')
  t.notOk('sub' in decodePart(noSub.split('.')[1]), 'the token really has no sub')
  assertInvalidToken(t, await get(app, 'demo-shop', noExp), noExp)
  assertInvalidToken(t, await get(app, 'demo-shop', noSub), noSub)
  assertTokensNotLogged(t, logs, [noExp, noSub])
})

t.test('key rotation: a token of a newly published key makes the service refetch once, and passes', async (t) => {
  const clock = fakeDate(t)
  const { app, jwks, logs } = await startedHarness(t)
  const before = await jwks.sign()
  t.equal((await get(app, 'demo-shop', before)).status, 200)
  const oldKid = jwks.current.kid

  await jwks.rotate({ keepOld: true })
  t.not(jwks.current.kid, oldKid)
  clock.tick(PAST_COOLDOWN_MS)
  const rotated = await jwks.sign({ sub: 'bob' })
  const answer = await get(app, 'demo-shop', rotated)
  t.equal(answer.status, 200, 'the token of the new key passes without a restart')
  t.equal(jwks.fetches, 2, 'exactly one refetch')

  t.equal((await get(app, 'demo-shop', await jwks.sign({}, { key: oldKid }))).status, 200, 'the old key, still published, still verifies')
  t.equal((await get(app, 'demo-shop', await jwks.sign({ sub: 'carol' }))).status, 200)
  t.equal(jwks.fetches, 2, 'known kids cause no fetch')
  const line = logLineWith(logs, (line) => line.msg === 'request completed' && line['callerId'] === 'jwt:bob')
  t.ok(line, 'the caller of the new key is logged as jwt:bob')
})

t.test('a token without kid verifies against every published key of its type, as during a rotation that keeps the old key', async (t) => {
  const clock = fakeDate(t)
  const { app, jwks } = await startedHarness(t)
  const oldKid = jwks.current.kid
  t.equal((await get(app, 'demo-shop', await jwks.sign({}, { withoutKid: true }))).status, 200, 'one key: it is the one')
  await jwks.rotate({ keepOld: true })
  clock.tick(PAST_COOLDOWN_MS)
  t.equal((await get(app, 'demo-shop', await jwks.sign({ sub: 'bob' }))).status, 200, 'the new key is fetched')
  t.equal((await get(app, 'demo-shop', await jwks.sign({ sub: 'carol' }, { withoutKid: true }))).status, 200, 'signed by the new key, no kid')
  t.equal((await get(app, 'demo-shop', await jwks.sign({ sub: 'dave' }, { key: oldKid, withoutKid: true }))).status, 200, 'signed by the old key, no kid')
})

t.test('a kid the JWKS never publishes is refused, and repeating it within the cooldown fetches at most once', async (t) => {
  const { app, jwks, logs } = await startedHarness(t, { JWT_JWKS_COOLDOWN_MS: LONG_COOLDOWN_MS })
  const tokens: string[] = []
  for (let attempt = 0; attempt < 5; attempt++) {
    const token = await jwks.sign({}, { kid: UNPUBLISHED_KID })
    tokens.push(token)
    assertInvalidToken(t, await get(app, 'demo-shop', token), token)
  }
  t.ok(jwks.fetches - 1 <= 1, `at most one fetch beyond the start fetch (got ${jwks.fetches - 1})`)
  t.equal((await get(app, 'demo-shop', await jwks.sign())).status, 200, 'a token of the published key still passes')
  assertTokensNotLogged(t, logs, tokens)
})

t.test('a burst of unknown kids past the cooldown refetches exactly once', async (t) => {
  // The clock stands still during the burst: however long it takes, it is all within one cooldown.
  const clock = fakeDate(t)
  const { app, jwks } = await startedHarness(t)
  clock.tick(PAST_COOLDOWN_MS)
  const tokens = await Promise.all(Array.from({ length: 5 }, () => jwks.sign({}, { kid: UNPUBLISHED_KID })))
  const answers = await Promise.all(tokens.map((token) => get(app, 'demo-shop', token)))
  answers.forEach((answer, index) => { assertInvalidToken(t, answer, tokens[index] ?? '') })
  t.equal(jwks.fetches, 2, 'one refetch for the whole burst')
})

t.test('JWKS unreachable after keys were loaded: the loaded keys keep verifying new tokens', async (t) => {
  const outages: Array<JwksAvailability | 'stopped'> = ['stopped', 'http-500', 'reset']
  for (const outage of outages) {
    await t.test(outage, async (t) => {
      const clock = fakeDate(t)
      const { app, jwks, simulator, logs } = await startedHarness(t)
      t.equal((await get(app, 'demo-shop', await jwks.sign())).status, 200)
      if (outage === 'stopped') await jwks.stop()
      else jwks.availability = outage

      const unseen = await jwks.sign({ sub: 'dave' })
      t.equal((await get(app, 'demo-shop', unseen)).status, 200, 'a token never seen before verifies with the loaded key')

      clock.tick(PAST_COOLDOWN_MS)
      const unknown = await jwks.sign({}, { kid: UNPUBLISHED_KID })
      const answer = await get(app, 'demo-shop', unknown)
      assertInvalidToken(t, answer, unknown)
      t.equal(jwks.fetches, outage === 'stopped' ? 1 : 2, 'one refetch was tried for the unknown kid (a refused connection reaches no server)')
      t.equal((await get(app, 'demo-shop', await jwks.sign({ sub: 'erin' }))).status, 200, 'the failed refresh kept the loaded keys')
      t.equal(simulator.calls, 1)
      t.ok(logLineWith(logs, (line) => line.msg === 'JWKS refresh failed; keeping the keys already loaded'), 'the failed refresh is logged')
    })
  }
})

t.test('JWKS unreachable since start: bearer requests get 503 authentication-unavailable with Retry-After, NxCloud untouched', async (t) => {
  const outages: Array<JwksAvailability | 'stopped'> = ['stopped', 'http-500', 'reset']
  for (const outage of outages) {
    await t.test(outage, async (t) => {
      const clock = fakeDate(t)
      const simulator = await startSimulator(t)
      const jwks = await startJwksFixture(t)
      if (outage === 'stopped') await jwks.stop()
      else jwks.availability = outage
      const { app, logs } = await buildTestApp(t, testConfig(simulator, authEnv(jwks)))
      const token = await jwks.sign()

      const answer = await get(app, 'demo-shop', token)
      const problem = assertProblem(t, answer, 'authenticationUnavailable', token)
      t.equal(problem.instance, phonesUrl('demo-shop'))
      const retryAfter = Number(answer.header('retry-after'))
      t.ok(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After is whole seconds (got ${String(answer.header('retry-after'))})`)
      t.equal(simulator.calls, 0, 'NxCloud was not called')
      t.ok(logLineWith(logs, (line) => line.msg === 'JWKS unavailable: bearer tokens cannot be verified'), 'the outage is logged')

      // Refused before any key is looked up: without keys these are still plain 401s, not 503s.
      const unsecured = `${base64urlJson({ alg: 'none' })}.${base64urlJson(jwks.claims())}.`
      const hmac = await new SignJWT(jwks.claims())
        .setProtectedHeader({ alg: 'HS256', kid: jwks.current.kid })
        .sign(new TextEncoder().encode(JSON.stringify(jwks.current.publicJwk)))
      assertInvalidToken(t, await get(app, 'demo-shop', unsecured), unsecured)
      assertInvalidToken(t, await get(app, 'demo-shop', hmac), hmac)

      if (outage !== 'stopped') {
        jwks.availability = 'up'
        clock.tick(PAST_COOLDOWN_MS)
        t.equal((await get(app, 'demo-shop', token)).status, 200, 'once the JWKS answers again, the same token passes without a restart')
        t.equal(simulator.calls, 1)
      }
      assertTokensNotLogged(t, logs, [token])
    })
  }
})

t.test('tenant scoping: a token reads only the appkeys of its tenants claim', async (t) => {
  await t.test('another tenant is refused before the cache or NxCloud, on a cold cache and on a cache hit', async (t) => {
    const { app, jwks, simulator, logs } = await startHarness(t)
    const shopOnly = await jwks.sign({ sub: 'shop-user', appkeys: ['demo-shop'] })

    const cold = await get(app, 'demo-bank', shopOnly)
    assertProblem(t, cold, 'tenantNotAllowed', shopOnly)
    t.equal(simulator.calls, 0, 'NxCloud not called on a cold cache')
    t.equal(cold.header('x-cache'), undefined, 'nothing about the cache is told')

    const everyTenant = await jwks.sign({ sub: 'ops', appkeys: '*' })
    t.equal((await get(app, 'demo-bank', everyTenant)).status, 200, 'a * caller fills the cache for demo-bank')
    t.equal(simulator.calls, 1)
    t.equal((await get(app, 'demo-bank', everyTenant)).header('x-cache'), 'HIT', 'demo-bank is cached now')

    const hit = await get(app, 'demo-bank', shopOnly)
    assertProblem(t, hit, 'tenantNotAllowed', shopOnly)
    t.equal(hit.header('x-cache'), undefined)
    t.equal(simulator.calls, 1, 'the refused request touched neither NxCloud nor (as its answer shows) the cache')
    t.equal((await get(app, 'demo-shop', shopOnly)).status, 200, 'its own tenant is readable')
    assertTokensNotLogged(t, logs, [shopOnly, everyTenant])
  })

  await t.test('appkeys "*" reads every tenant', async (t) => {
    const { app, jwks } = await startHarness(t)
    const everyTenant = await jwks.sign({ appkeys: '*' })
    for (const appkey of ['demo-shop', 'demo-bank', 'demo-empty']) {
      t.equal((await get(app, appkey, everyTenant)).status, 200, appkey)
    }
  })

  await t.test('a token without the tenants claim (or with a claim of the wrong shape) reads no tenant', async (t) => {
    const { app, jwks, simulator } = await startHarness(t)
    for (const appkeys of [undefined, 'demo-shop', [], { 'demo-shop': true }]) {
      const token = await jwks.sign({ appkeys })
      assertProblem(t, await get(app, 'demo-shop', token), 'tenantNotAllowed', token)
    }
    t.equal(simulator.calls, 0)
  })

  await t.test('JWT_TENANTS_CLAIM names the claim read, and only that one', async (t) => {
    const claim = 'https://example.com/appkeys'
    const { app, jwks, simulator } = await startHarness(t, { JWT_TENANTS_CLAIM: claim })
    const custom = await jwks.sign({ appkeys: undefined, [claim]: ['demo-shop'] })
    t.equal((await get(app, 'demo-shop', custom)).status, 200, 'the custom claim grants demo-shop')
    assertProblem(t, await get(app, 'demo-bank', custom), 'tenantNotAllowed', custom)
    const defaultClaimOnly = await jwks.sign({ appkeys: '*' })
    assertProblem(t, await get(app, 'demo-shop', defaultClaimOnly), 'tenantNotAllowed', defaultClaimOnly)
    t.equal(simulator.calls, 1)
  })
})

t.test('scope: phones:read is needed, in scope (space-separated) or scp (array or string)', async (t) => {
  const { app, jwks, simulator, logs } = await startHarness(t)
  const otherScope = await jwks.sign({ scope: 'other' })
  const answer = await get(app, 'demo-shop', otherScope)
  assertProblem(t, answer, 'insufficientScope', otherScope)
  const challenge = answer.header('www-authenticate') ?? ''
  t.ok(challenge.startsWith(REALM_CHALLENGE))
  t.ok(challenge.includes('error="insufficient_scope"'), `WWW-Authenticate says insufficient_scope (got ${challenge})`)
  const noScope = await jwks.sign({ scope: undefined })
  assertProblem(t, await get(app, 'demo-shop', noScope), 'insufficientScope', noScope)
  const lookalike = await jwks.sign({ scope: 'phones:read:all phones' })
  assertProblem(t, await get(app, 'demo-shop', lookalike), 'insufficientScope', lookalike)
  t.equal(simulator.calls, 0)

  const granted: TokenClaims[] = [
    { scope: undefined, scp: ['phones:read'] },
    { scope: undefined, scp: 'phones:read' },
    { scope: 'openid phones:read profile' },
  ]
  for (const claims of granted) {
    t.equal((await get(app, 'demo-shop', await jwks.sign(claims))).status, 200, JSON.stringify(claims))
  }
  assertTokensNotLogged(t, logs, [otherScope, noScope, lookalike])
})

t.test('a bad token is a 401 before a malformed appkey is a 400', async (t) => {
  const { app, jwks, simulator } = await startHarness(t)
  const now = nowSeconds()
  const expired = await jwks.sign({ iat: now - 600, exp: now - 300 })
  assertInvalidToken(t, await get(app, 'bad!key', expired), expired)
  const missing = await get(app, 'bad!key', undefined)
  assertProblem(t, missing, 'unauthenticated')
  t.ok((missing.header('www-authenticate') ?? '').startsWith(REALM_CHALLENGE))
  const valid = await jwks.sign({ appkeys: '*' })
  assertProblem(t, await get(app, 'bad!key', valid), 'invalidRequest', valid)
  t.equal(simulator.calls, 0)
})

t.test('no problem body carries the token, whatever the failure', async (t) => {
  const { app, jwks } = await startHarness(t)
  const now = nowSeconds()
  const cases: Array<[string, string, ProblemKind]> = [
    ['expired', await jwks.sign({ exp: now - 300 }), 'unauthenticated'],
    ['wrong issuer', await jwks.sign({ iss: 'https://evil.example/' }), 'unauthenticated'],
    ['unknown kid', await jwks.sign({}, { kid: UNPUBLISHED_KID }), 'unauthenticated'],
    ['not a JWT', 'not-a-jwt', 'unauthenticated'],
    ['other tenant', await jwks.sign({ appkeys: ['demo-empty'] }), 'tenantNotAllowed'],
    ['missing scope', await jwks.sign({ scope: 'other' }), 'insufficientScope'],
  ]
  for (const [name, token, kind] of cases) {
    t.comment(name)
    const answer = await get(app, 'demo-shop', token)
    const problem = assertProblem(t, answer, kind, token)
    t.notOk(problem.detail.includes(token), `${name}: the detail does not quote the token`)
  }
})
