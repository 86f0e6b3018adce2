/**
 * Hostile credentials over real sockets: hundreds of deterministic pseudo-random X-API-Key and
 * Authorization values, each one a header a client can legally send, against a listening service
 * that accepts both API keys and bearer tokens. Every one must be a 401: never a 5xx (a crash in the
 * parsing), never a 2xx or 403 (a value taken for a caller), and NxCloud is never called.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { levels } from 'pino'
import { Pool } from 'undici'
import { PROBLEM_CONTENT_TYPE } from '../../src/errors/problem-schema.js'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'
import { logLinesWith } from '../support/log-lines.js'
import { apiKeyEnv, issue, writeApiKeyFile } from './api-key-fixture.js'

const SEED = 0x5eedc0de
const RANDOM_VALUES_PER_HEADER = 200
const MAX_VALUE_LENGTH = 8 * 1024
const CONCURRENCY = 8
const ISSUER = 'https://idp.fuzz.nxcloud-bff.test/'
const AUDIENCE = 'nxcloud-bff-fuzz'
const KID = 'fuzz-key-1'
// The credentials below may read demo-shop only: asking demo-bank, an accepted credential is a 403
// that never reaches NxCloud, so a fuzz value that were taken for a caller shows as a 403, not a 401.
const TENANT_URL = phonesUrl('demo-bank')
// Every header value a client may send: HTAB, visible ASCII and space, obs-text (RFC 9110 field-value).
const LEGAL_HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

type HeaderName = 'x-api-key' | 'authorization'

interface FuzzCase {
  header: HeaderName
  kind: string
  value: string
}

/** mulberry32: a small seeded PRNG, so a failure reproduces with the same values. */
function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let mixed = state
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1)
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61)
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296
  }
}

function charRange (from: number, to: number): string {
  return Array.from({ length: to - from + 1 }, (_, index) => String.fromCharCode(from + index)).join('')
}

const PRINTABLE = charRange(0x20, 0x7e)
const OBS_TEXT = charRange(0x80, 0xff)
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const KEY_ALPHABET = `${BASE64URL}~.+/=`
const UNICODE_SAMPLES = ['ключ', '密钥', 'clé', '🔑', 'Schlüssel', 'مفتاح', '\u200b', '\ufeff', '\u2028', 'ｎｘｂｆｆ']

class Fuzzer {
  readonly #random: () => number

  constructor (seed: number) {
    this.#random = seededRandom(seed)
  }

  int (min: number, max: number): number {
    return min + Math.floor(this.#random() * (max - min + 1))
  }

  pick<T> (items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)]
    if (item === undefined) throw new Error('pick from an empty list')
    return item
  }

  text (alphabet: string, length: number): string {
    let text = ''
    for (let index = 0; index < length; index++) text += alphabet[this.int(0, alphabet.length - 1)] ?? ''
    return text
  }

  base64url (minLength: number, maxLength: number): string {
    return this.text(BASE64URL, this.int(minLength, maxLength))
  }

  json (): string {
    const samples: unknown[] = [
      { key: this.text(KEY_ALPHABET, this.int(0, 60)) },
      { alg: this.pick(['none', 'HS256', 'ES256', 'RS256']), kid: this.text(PRINTABLE, this.int(0, 20)) },
      [this.int(-1e6, 1e6), null, true, this.text(PRINTABLE, 8)],
      { sub: 'admin', appkeys: '*', scope: 'phones:read' },
      this.text(PRINTABLE, this.int(0, 30)),
    ]
    return JSON.stringify(this.pick(samples))
  }

  /** A Unicode string as its UTF-8 bytes, each byte one latin1 character: what a sloppy client puts on the wire. */
  unicodeAsLatin1 (): string {
    const text = Array.from({ length: this.int(1, 4) }, () => this.pick(UNICODE_SAMPLES)).join(this.pick(['', ' ', '-']))
    return Buffer.from(text, 'utf8').toString('latin1')
  }

  /** A compact JWS whose header decodes to JSON, with random claims and a random "signature". */
  jwtShaped (): string {
    const header = { alg: this.pick(['ES256', 'RS256', 'HS256', 'none', 'EdDSA', 'PS256', '']), kid: this.pick([KID, 'other', '']) }
    const payload = { iss: this.pick([ISSUER, 'x']), aud: AUDIENCE, sub: 'mallory', exp: this.int(0, 4e9), appkeys: '*', scope: 'phones:read' }
    const segment = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
    return `${segment(header)}.${segment(payload)}.${this.base64url(0, 90)}`
  }
}

/** A key of the issued form changed in one of the ways a client or a person gets a key wrong. */
function nearValidKeys (fuzz: Fuzzer, key: string): Array<[string, string]> {
  const variants: Array<[string, string]> = []
  for (let round = 0; round < 12; round++) {
    const index = fuzz.int(0, key.length - 1)
    const original = key[index] ?? ''
    const replacement = fuzz.pick([...KEY_ALPHABET].filter((char) => char !== original))
    variants.push(['one character changed', `${key.slice(0, index)}${replacement}${key.slice(index + 1)}`])
  }
  variants.push(
    ['truncated by one', key.slice(0, -1)],
    ['truncated to the prefix and 36 characters', key.slice(0, 42)],
    ['truncated to half', key.slice(0, Math.floor(key.length / 2))],
    ['a space inside', `${key.slice(0, 20)} ${key.slice(20)}`],
    ['a tab inside', `${key.slice(0, 30)}\t${key.slice(30)}`],
    ['two keys', `${key},${key}`],
    ['doubled', `${key}${key}`],
    ['one character more', `${key}A`],
    ['case flipped', key.replace(/[a-z]/, (char) => char.toUpperCase())],
    ['upper case', key.toUpperCase()],
    ['prefixed with a scheme', `ApiKey ${key}`],
    ['quoted', `"${key}"`],
    ['padded with =', `${key}=`],
    ['as standard base64', key.replaceAll('-', '+').replaceAll('_', '/')],
    ['a non-breaking space after it', `${key}\u00a0`],
    ['its UTF-8 BOM before it', `${Buffer.from('\ufeff', 'utf8').toString('latin1')}${key}`]
  )
  return variants
}

function emptyish (): string[] {
  return ['', ' ', '\t', ' \t ', '""', "''", 'null', 'undefined', '0', '*', '[]', '{}', ',', ';', '=', '.', '..', '...']
}

function apiKeyCases (fuzz: Fuzzer, key: string, token: string): FuzzCase[] {
  const cases: Array<[string, string]> = []
  for (const value of emptyish()) cases.push(['empty-ish', value])
  for (const variant of nearValidKeys(fuzz, key)) cases.push(variant)
  cases.push(['a bearer token as a key', token], ['Bearer and the key', `Bearer ${key}`], ['the key hash', issue('x', ['demo-shop']).entry.sha256])
  const generators: Array<[string, () => string]> = [
    ['random printable', () => fuzz.text(PRINTABLE, fuzz.int(1, 120))],
    ['very long printable', () => fuzz.text(PRINTABLE, fuzz.int(1024, MAX_VALUE_LENGTH))],
    ['well-formed, never issued', () => fuzz.text(KEY_ALPHABET, fuzz.int(43, 256))],
    ['key alphabet, too long', () => fuzz.text(KEY_ALPHABET, fuzz.int(257, MAX_VALUE_LENGTH))],
    ['key alphabet, too short', () => fuzz.text(KEY_ALPHABET, fuzz.int(1, 42))],
    ['issued form, never issued', () => `nxbff_${fuzz.base64url(43, 43)}`],
    ['Bearer and garbage', () => `Bearer ${fuzz.text(PRINTABLE, fuzz.int(0, 80))}`],
    ['base64url triple', () => `${fuzz.base64url(1, 60)}.${fuzz.base64url(1, 60)}.${fuzz.base64url(0, 60)}`],
    ['JSON', () => fuzz.json()],
    ['unicode as latin1 bytes', () => fuzz.unicodeAsLatin1()],
    ['obs-text bytes', () => fuzz.text(OBS_TEXT + PRINTABLE, fuzz.int(1, 100))],
    ['Basic', () => `Basic ${Buffer.from(`${fuzz.text(PRINTABLE, 8)}:${key}`).toString('base64')}`],
  ]
  for (let index = 0; index < RANDOM_VALUES_PER_HEADER; index++) {
    const [kind, generate] = generators[index % generators.length] ?? generators[0]!
    cases.push([kind, generate()])
  }
  return cases.map(([kind, value]) => ({ header: 'x-api-key', kind, value }))
}

interface SigningKeys {
  published: CryptoKey
  unpublished: CryptoKey
}

/** Valid claims with `overrides` applied; a claim set to undefined is left out of the token. */
function tokenClaims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { iss: ISSUER, aud: AUDIENCE, sub: 'fuzz-client', iat: now, exp: now + 300, appkeys: ['demo-shop'], scope: 'phones:read', ...overrides }
}

async function signed (key: CryptoKey, claims: Record<string, unknown>, header: { alg?: string, kid?: string } = {}): Promise<string> {
  const withoutUndefined = Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined))
  return await new SignJWT(withoutUndefined).setProtectedHeader({ alg: 'ES256', kid: KID, ...header }).sign(key)
}

/** Tokens one step from valid: right shape, each wrong in one way the verifier must catch. */
async function nearValidTokens (keys: SigningKeys, token: string): Promise<Array<[string, string]>> {
  const now = Math.floor(Date.now() / 1000)
  const [head = '', body = '', signature = ''] = token.split('.')
  // Not the last character: its low bits are padding, and a decoder may read two spellings as one signature.
  const middle = Math.floor(signature.length / 2)
  const flipped = signature[middle] === 'A' ? 'B' : 'A'
  const unsigned = (header: object, claims: Record<string, unknown>) =>
    `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
  const hmac = async (secret: Uint8Array) =>
    await new SignJWT(tokenClaims()).setProtectedHeader({ alg: 'HS256', kid: KID }).sign(secret)
  const publicJwk = await exportJWK(keys.published)
  return [
    ['another issuer', await signed(keys.published, tokenClaims({ iss: 'https://evil.example/' }))],
    ['another audience', await signed(keys.published, tokenClaims({ aud: 'someone-else' }))],
    ['expired', await signed(keys.published, tokenClaims({ iat: now - 7200, exp: now - 3600 }))],
    ['not yet valid', await signed(keys.published, tokenClaims({ nbf: now + 3600 }))],
    ['no sub', await signed(keys.published, tokenClaims({ sub: undefined }))],
    ['no exp', await signed(keys.published, tokenClaims({ exp: undefined }))],
    ['signed by an unpublished key under the published kid', await signed(keys.unpublished, tokenClaims())],
    ['signed by an unpublished key under an unknown kid', await signed(keys.unpublished, tokenClaims(), { kid: 'unknown-kid' })],
    ['alg none', unsigned({ alg: 'none', kid: KID }, tokenClaims())],
    ['HS256 with a guessed secret', await hmac(new TextEncoder().encode('secret'))],
    ['HS256 with the public key as the secret', await hmac(new TextEncoder().encode(JSON.stringify(publicJwk)))],
    ['one signature character changed', `${head}.${body}.${signature.slice(0, middle)}${flipped}${signature.slice(middle + 1)}`],
    ['signature removed', `${head}.${body}.`],
    ['payload of another token', `${head}.${Buffer.from(JSON.stringify(tokenClaims({ appkeys: '*' }))).toString('base64url')}.${signature}`],
    ['a space inside', `${head}.${body} .${signature}`],
    ['two segments', `${head}.${body}`],
    ['four segments', `${token}.${signature}`],
  ]
}

async function authorizationCases (fuzz: Fuzzer, keys: SigningKeys, token: string, apiKey: string): Promise<FuzzCase[]> {
  const cases: Array<[string, string]> = []
  for (const value of emptyish()) cases.push(['empty-ish', value])
  cases.push(
    ['Bearer alone', 'Bearer'],
    ['Bearer and spaces', 'Bearer    '],
    ['Bearer a.b.c', 'Bearer a.b.c'],
    ['Bearer ..', 'Bearer ..'],
    ['the token without a scheme', token],
    ['the token under Basic', `Basic ${token}`],
    ['the token after a tab', `Bearer\t${token}`],
    ['the token without a space', `Bearer${token}`],
    ['the token twice', `Bearer ${token} ${token}`],
    ['the token, comma, another scheme', `Bearer ${token}, ApiKey ${apiKey}`],
    ['an API key as a bearer token', `Bearer ${apiKey}`],
    ['an API key under its own scheme', `ApiKey ${apiKey}`],
    ['an API key alone', apiKey],
    ['Basic credentials', `Basic ${Buffer.from(`fuzz-client:${apiKey}`).toString('base64')}`]
  )
  for (const [kind, value] of await nearValidTokens(keys, token)) cases.push([`Bearer, ${kind}`, `Bearer ${value}`])
  const generators: Array<[string, () => string]> = [
    ['random printable', () => fuzz.text(PRINTABLE, fuzz.int(1, 120))],
    ['very long printable', () => fuzz.text(PRINTABLE, fuzz.int(1024, MAX_VALUE_LENGTH))],
    ['Bearer and garbage', () => `Bearer ${fuzz.text(PRINTABLE, fuzz.int(1, 200))}`],
    ['Bearer and a long base64url triple', () => `Bearer ${fuzz.base64url(1, 4000)}.${fuzz.base64url(1, 4000)}.${fuzz.base64url(0, 150)}`],
    ['Bearer and a short base64url triple', () => `Bearer ${fuzz.base64url(1, 12)}.${fuzz.base64url(1, 12)}.${fuzz.base64url(0, 12)}`],
    ['Bearer and a JWT-shaped value', () => `${fuzz.pick(['Bearer', 'bearer', 'BEARER'])} ${fuzz.jwtShaped()}`],
    ['Bearer and JSON', () => `Bearer ${fuzz.json()}`],
    ['JSON', () => fuzz.json()],
    ['Bearer and unicode as latin1 bytes', () => `Bearer ${fuzz.unicodeAsLatin1()}`],
    ['obs-text bytes', () => fuzz.text(OBS_TEXT + PRINTABLE, fuzz.int(1, 100))],
    ['Basic and garbage', () => `Basic ${Buffer.from(fuzz.text(PRINTABLE, fuzz.int(1, 60))).toString('base64')}`],
    ['another scheme', () => `${fuzz.pick(['Digest', 'Negotiate', 'Token', 'ApiKey', 'DPoP', 'Bearer:'])} ${fuzz.base64url(1, 80)}`],
  ]
  for (let index = 0; index < RANDOM_VALUES_PER_HEADER; index++) {
    const [kind, generate] = generators[index % generators.length] ?? generators[0]!
    cases.push([kind, generate()])
  }
  return cases.map(([kind, value]) => ({ header: 'authorization', kind, value }))
}

/** A minimal identity provider: the public half of one ES256 key as a JWKS on a loopback port. */
async function startJwks (t: Test): Promise<{ url: string, keys: SigningKeys }> {
  const published = await generateKeyPair('ES256', { extractable: true })
  const unpublished = await generateKeyPair('ES256', { extractable: true })
  const jwks = JSON.stringify({ keys: [{ ...await exportJWK(published.publicKey), kid: KID, alg: 'ES256', use: 'sig' }] })
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(jwks)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => { resolve() })
  }))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/jwks.json`, keys: { published: published.privateKey, unpublished: unpublished.privateKey } }
}

interface Answer {
  status: number
  contentType: string
  problemType: string | undefined
  detail: string | undefined
  challenge: string
}

async function send (pool: Pool, headers: Record<string, string>): Promise<Answer> {
  const response = await pool.request({ method: 'GET', path: TENANT_URL, headers })
  const text = await response.body.text()
  let problem: { type?: string, detail?: string } = {}
  try {
    problem = JSON.parse(text) as { type?: string, detail?: string }
  } catch {
    // not JSON: reported as a wrong answer below
  }
  return {
    status: response.statusCode,
    contentType: String(response.headers['content-type']),
    problemType: problem.type,
    detail: problem.detail,
    challenge: String(response.headers['www-authenticate']),
  }
}

function describe (fuzzCase: FuzzCase): string {
  const shown = fuzzCase.value.length > 80 ? `${fuzzCase.value.slice(0, 80)}… (${fuzzCase.value.length} chars)` : fuzzCase.value
  return `${fuzzCase.header} ${fuzzCase.kind}: ${JSON.stringify(shown)}`
}

t.test('hundreds of hostile X-API-Key and Authorization values over real sockets are each a 401', async (t) => {
  const simulator = await startSimulator(t)
  const jwks = await startJwks(t)
  const shopKey = issue('fuzz-shop', ['demo-shop'])
  const file = writeApiKeyFile(t, [shopKey.entry])
  const { app, logs } = await buildTestApp(t, testConfig(simulator, {
    ...apiKeyEnv(file),
    REDIS_URL: TEST_REDIS_URL,
    JWT_JWKS_URL: jwks.url,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    // Failed authentications count against the address, and every request here comes from one.
    RATE_LIMIT_MAX: '100000',
  }))
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  const pool = new Pool(origin, { connections: CONCURRENCY })
  t.teardown(() => pool.close())

  // Both credentials are accepted as they are, so the fuzz values below are one step from a caller.
  const token = await signed(jwks.keys.published, tokenClaims())
  const keyAnswer = await send(pool, { 'x-api-key': shopKey.key })
  t.equal(keyAnswer.problemType, ProblemTypes.tenantNotAllowed.type, 'the issued key is a caller (403 on another tenant)')
  const tokenAnswer = await send(pool, { authorization: `Bearer ${token}` })
  t.equal(tokenAnswer.problemType, ProblemTypes.tenantNotAllowed.type, 'the signed token is a caller (403 on another tenant)')

  const fuzz = new Fuzzer(SEED)
  const cases = [
    ...apiKeyCases(fuzz, shopKey.key, token),
    ...await authorizationCases(fuzz, jwks.keys, token, shopKey.key),
  ]
  const illegal = cases.filter((fuzzCase) => !LEGAL_HEADER_VALUE.test(fuzzCase.value) || fuzzCase.value.length > MAX_VALUE_LENGTH)
  t.strictSame(illegal.map(describe), [], 'every value is one a client may send as a header, at most 8 KiB')
  t.ok(cases.length >= 300, `${cases.length} values`)
  // A handful with both headers: ambiguous, whatever each holds.
  const both = cases.filter((fuzzCase) => fuzzCase.header === 'x-api-key').slice(0, 10)

  const wrong: string[] = []
  const details = new Set<string>()
  const check = (description: string, answer: Answer) => {
    const is401Problem = answer.status === 401 &&
      answer.contentType.startsWith(PROBLEM_CONTENT_TYPE) &&
      answer.problemType === ProblemTypes.unauthenticated.type &&
      answer.challenge.includes('ApiKey realm="nxcloud-bff"') &&
      answer.challenge.includes('Bearer realm="nxcloud-bff"')
    details.add(String(answer.detail))
    if (!is401Problem) wrong.push(`${description} → ${answer.status} ${String(answer.problemType)} (${answer.challenge})`)
  }
  let next = 0
  const worker = async () => {
    while (next < cases.length) {
      const fuzzCase = cases[next++]
      if (fuzzCase === undefined) break
      check(describe(fuzzCase), await send(pool, { [fuzzCase.header]: fuzzCase.value }))
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  for (const fuzzCase of both) {
    check(`both headers, ${describe(fuzzCase)}`, await send(pool, { 'x-api-key': shopKey.key, authorization: `Bearer ${fuzzCase.value}` }))
    check(`both headers, ${describe(fuzzCase)}`, await send(pool, { 'x-api-key': fuzzCase.value, authorization: `Bearer ${token}` }))
  }

  t.strictSame(wrong, [], `each of ${cases.length + both.length * 2} hostile values is a 401 problem with both challenges`)
  // The values reached every stage of both checks, not just the first one that refuses them.
  for (const detail of [
    'The API key is not well-formed',
    'The API key is not known',
    'Send either X-API-Key or Authorization, not both',
    'The Authorization header must be "Bearer <token>"',
    'The bearer token is not a signed JWT',
    'The bearer token is not a valid signed JWT',
    'The token\'s signing algorithm is not accepted',
    'The token\'s signature is not valid',
    'The token was signed with a key the identity provider does not publish',
    'The token was issued by another issuer',
    'The token is meant for another audience',
    'The token has expired',
    'The token is not valid yet',
  ]) {
    t.ok(details.has(detail), `some values were refused with: ${detail}`)
  }
  t.equal(simulator.calls, 0, 'NxCloud was never called')
  const unexpected = logLinesWith(logs, (line) => line.msg === 'unexpected error' || line.level === levels.values['fatal'])
  t.strictSame(unexpected, [], 'no value made the service log an unexpected error')
})
