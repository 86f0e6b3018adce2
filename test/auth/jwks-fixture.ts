/**
 * A stand-in identity provider for the access tests: key pairs generated per test with `jose`, their
 * public halves served as a JWKS over loopback (real HTTP on an ephemeral port), tokens minted with
 * them, key rotation, an outage switch and a count of the key set fetches the service made.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { eventually } from '../support/eventually.js'

export const JWKS_PATH = '/.well-known/jwks.json'
export const FIXTURE_ISSUER = 'https://idp.test.nxcloud-bff.local/'
export const FIXTURE_AUDIENCE = 'nxcloud-bff-test'
export const FIXTURE_SUBJECT = 'alice'
/** Least time between two refetches the service makes for unknown key ids, in the tests that rotate. */
export const FIXTURE_COOLDOWN_MS = 50
const TOKEN_LIFETIME_SECONDS = 300

export type SigningAlgorithm = 'ES256' | 'RS256'

/**
 * How the key set endpoint behaves: `up` serves the keys; `http-500` answers 500; `reset` destroys the
 * connection without an answer. `stop()` closes the server itself (connections are then refused).
 */
export type JwksAvailability = 'up' | 'http-500' | 'reset'

/** Claims of a token; a claim set to `undefined` is left out (a token without `exp`, `sub`...). */
export type TokenClaims = Record<string, unknown>

export interface SignOptions {
  /** The `kid` of the fixture key that signs; the current key by default. */
  key?: string
  /** The `kid` written in the header, when it should not name the signing key. */
  kid?: string
  /** No `kid` in the header at all (some providers leave it out). */
  withoutKid?: boolean
}

export interface FixtureKey {
  kid: string
  alg: SigningAlgorithm
  privateKey: CryptoKey
  /** The public JWK exactly as the key set publishes it (kid, alg, use set). */
  publicJwk: JWK
}

export interface JwksFixture {
  /** The key set address, for JWT_JWKS_URL. */
  readonly url: string
  readonly issuer: string
  readonly audience: string
  /** Requests the key set endpoint received (every one, including those answered 500 or reset). */
  readonly fetches: number
  /** The key new tokens are signed with. */
  readonly current: FixtureKey
  /** The kids the key set publishes now. */
  readonly publishedKids: string[]
  availability: JwksAvailability
  /** The default claims of a valid token (iss, aud, sub, iat, exp, appkeys, scope) with `overrides` applied. */
  claims (overrides?: TokenClaims): TokenClaims
  /** A token signed with the current key (or `options.key`), its header naming the key's kid and alg. */
  sign (overrides?: TokenClaims, options?: SignOptions): Promise<string>
  /** A new key pair becomes current and is published; the previous ones stay published when `keepOld`. */
  rotate (options?: { keepOld?: boolean }): Promise<FixtureKey>
  /** Resolves once the key set has been requested at least `count` times. */
  waitForFetches (count: number): Promise<void>
  /** Closes the server: the key set address refuses connections from now on. */
  stop (): Promise<void>
}

interface Teardown {
  teardown (fn: () => unknown): void
}

export interface JwksFixtureOptions {
  alg?: SigningAlgorithm
  issuer?: string
  audience?: string
  availability?: JwksAvailability
}

export function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

async function newKey (alg: SigningAlgorithm): Promise<FixtureKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `test-${alg.toLowerCase()}-${randomUUID()}`
  return { kid, alg, privateKey, publicJwk: { ...await exportJWK(publicKey), kid, alg, use: 'sig' } }
}

/** Starts the key set server on 127.0.0.1 and registers its closing with `t`. */
export async function startJwksFixture (t: Teardown, options: JwksFixtureOptions = {}): Promise<JwksFixture> {
  const alg = options.alg ?? 'ES256'
  const issuer = options.issuer ?? FIXTURE_ISSUER
  const audience = options.audience ?? FIXTURE_AUDIENCE
  const keys = new Map<string, FixtureKey>()
  let published: FixtureKey[] = []
  let current = await newKey(alg)
  keys.set(current.kid, current)
  published.push(current)
  let fetches = 0
  let availability: JwksAvailability = options.availability ?? 'up'
  let stopped = false

  const sockets = new Set<Socket>()
  const server: Server = createServer((request, response: ServerResponse) => {
    if (request.method !== 'GET' || request.url !== JWKS_PATH) {
      response.writeHead(404).end()
      return
    }
    fetches++
    if (availability === 'reset') {
      request.socket.destroy()
      return
    }
    if (availability === 'http-500') {
      response.writeHead(500, { 'content-type': 'text/plain' }).end('identity provider is down')
      return
    }
    response.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'no-store' })
      .end(JSON.stringify({ keys: published.map((key) => key.publicJwk) }))
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  async function stop (): Promise<void> {
    if (stopped) return
    stopped = true
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const socket of sockets) socket.destroy()
    await closed
  }
  t.teardown(stop)

  function claims (overrides: TokenClaims = {}): TokenClaims {
    const now = nowSeconds()
    const merged: TokenClaims = {
      iss: issuer,
      aud: audience,
      sub: FIXTURE_SUBJECT,
      iat: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
      // Every token is distinct, so none is ever answered from the service's verified-token cache by accident.
      jti: randomUUID(),
      appkeys: ['demo-shop'],
      scope: 'phones:read',
      ...overrides,
    }
    for (const [name, value] of Object.entries(merged)) if (value === undefined) Reflect.deleteProperty(merged, name)
    return merged
  }

  return {
    url: `http://127.0.0.1:${port}${JWKS_PATH}`,
    issuer,
    audience,
    get fetches () { return fetches },
    get current () { return current },
    get publishedKids () { return published.map((key) => key.kid) },
    get availability () { return availability },
    set availability (value) { availability = value },
    claims,
    async sign (overrides = {}, signOptions = {}) {
      const key = signOptions.key === undefined ? current : keys.get(signOptions.key)
      if (key === undefined) throw new Error(`the fixture has no key ${String(signOptions.key)}`)
      return await new SignJWT(claims(overrides))
        .setProtectedHeader(signOptions.withoutKid === true
          ? { alg: key.alg, typ: 'JWT' }
          : { alg: key.alg, kid: signOptions.kid ?? key.kid, typ: 'JWT' })
        .sign(key.privateKey)
    },
    async rotate (rotateOptions = {}) {
      current = await newKey(alg)
      keys.set(current.kid, current)
      published = rotateOptions.keepOld === true ? [...published, current] : [current]
      return current
    },
    async waitForFetches (count) {
      await eventually(() => fetches >= count, { what: `the key set to be fetched ${count} times` })
    },
    stop,
  }
}

/**
 * The environment turning bearer authentication on against `fixture`, for `testConfig(simulator, env)`
 * (which turns authentication off by default). A short refetch cooldown lets rotation tests run fast.
 */
export function authEnv (fixture: JwksFixture, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    AUTH_DISABLED: 'false',
    JWT_JWKS_URL: fixture.url,
    JWT_ISSUER: fixture.issuer,
    JWT_AUDIENCE: fixture.audience,
    JWT_JWKS_COOLDOWN_MS: String(FIXTURE_COOLDOWN_MS),
    ...overrides,
  }
}
