/**
 * A stand-in for the company identity provider, for `npm run dev` only: an ES256 key kept in
 * `.dev/` (git-ignored, created on first use), its JWKS served over loopback, and tokens minted with it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose'

export const DEV_ISSUER = 'https://dev-idp.nxcloud-bff.local/'
export const DEV_AUDIENCE = 'nxcloud-bff'
const DEV_KEY_FILE = fileURLToPath(new URL('../../.dev/jwt-signing-key.json', import.meta.url))
const ALGORITHM = 'ES256'

interface DevSigningKey {
  privateJwk: JWK
  publicJwk: JWK
}

export async function devSigningKey (): Promise<DevSigningKey> {
  if (existsSync(DEV_KEY_FILE)) return JSON.parse(readFileSync(DEV_KEY_FILE, 'utf8')) as DevSigningKey
  const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true })
  const kid = `dev-${Date.now()}`
  const key: DevSigningKey = {
    privateJwk: { ...await exportJWK(privateKey), kid, alg: ALGORITHM },
    publicJwk: { ...await exportJWK(publicKey), kid, alg: ALGORITHM, use: 'sig' },
  }
  mkdirSync(new URL('../../.dev/', import.meta.url), { recursive: true })
  writeFileSync(DEV_KEY_FILE, JSON.stringify(key), { mode: 0o600 })
  return key
}

export interface DevTokenClaims {
  sub: string
  appkeys: string[] | '*'
  scope: string
  ttlSeconds: number
}

export async function mintDevToken (claims: DevTokenClaims): Promise<string> {
  const { privateJwk } = await devSigningKey()
  return await new SignJWT({ appkeys: claims.appkeys, scope: claims.scope })
    .setProtectedHeader({ alg: ALGORITHM, kid: String(privateJwk.kid) })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(`${claims.ttlSeconds}s`)
    .sign(await importJWK(privateJwk, ALGORITHM))
}

export async function startDevJwksServer (port: number): Promise<{ url: string, close (): Promise<void> }> {
  const { publicJwk } = await devSigningKey()
  const body = JSON.stringify({ keys: [publicJwk] })
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const { port: bound } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${bound}/.well-known/jwks.json`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}
