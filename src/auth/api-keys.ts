import { createHash } from 'node:crypto'
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import type { FastifyBaseLogger } from 'fastify'
import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { ALL_TENANTS, Scopes, type Caller } from './caller.js'
import { isDemoApiKeyHash } from './demo-api-keys.js'

// 32 random bytes are 43 characters of base64url: nothing shorter can be a key we issued. The upper
// bound keeps a hostile header from costing a hash of kilobytes.
const API_KEY_FORMAT = /^[A-Za-z0-9_~.+/=-]{43,256}$/

const ApiKeyEntrySchema = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9._:-]{1,64}$', description: 'who holds the key; logged as callerId key:<id>' }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lower-case hex SHA-256 of the key' }),
  tenants: Type.Union([
    Type.Literal(ALL_TENANTS),
    Type.Array(Type.String({ pattern: '^([A-Za-z0-9_-]{1,64}|\\*)$' }), { minItems: 1 }),
  ]),
  scopes: Type.Array(Type.Union([Type.Literal(Scopes.phonesRead), Type.Literal(Scopes.cacheRefresh)]), { minItems: 1 }),
  rateLimitMax: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false })

const ApiKeyFileSchema = Type.Array(ApiKeyEntrySchema)
export type ApiKeyEntry = Static<typeof ApiKeyEntrySchema>

export const ApiKeyFileValidator = Compile(ApiKeyFileSchema)

export class ApiKeyFileError extends Error {
  constructor (file: string, reason: string) {
    super(`API_KEYS_FILE ${JSON.stringify(file)}: ${reason}`)
    this.name = 'ApiKeyFileError'
  }
}

export interface ApiKeyRegistryOptions {
  file: string
  reloadIntervalMs: number
  /** Demo keys are published in the README: a production start must refuse them. */
  rejectDemoKeys: boolean
  log: FastifyBaseLogger
}

export interface ApiKeyRegistry {
  /**
   * The caller a presented key belongs to, or undefined for a key that is not (or no longer) issued or
   * not even well-formed (see isWellFormedApiKey).
   */
  callerFor (presentedKey: string): Caller | undefined
  close (): void
}

export function isWellFormedApiKey (presentedKey: string): boolean {
  return API_KEY_FORMAT.test(presentedKey)
}

export function sha256Hex (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/**
 * The issued keys, by hash: only hashes are stored, so the file leaks no key. A presented key is
 * hashed and its hash looked up; the lookup's timing depends on the hash, which an attacker cannot
 * steer towards a stored one, so it says nothing about any issued key. Once verified, a key is
 * remembered as presented (in memory only, like the request that carried it); that lookup compares
 * characters only on a collision of V8's seeded 32-bit string hash, which an attacker cannot aim either.
 *
 * The file is watched by polling its metadata (which follows symlinks, as Kubernetes swaps a
 * secret's files); a change takes effect without a restart, and a broken file keeps the previous keys.
 */
export function createApiKeyRegistry (options: ApiKeyRegistryOptions): ApiKeyRegistry {
  const { file, log } = options
  let callers = loadCallers(file, options.rejectDemoKeys)
  // Keys already verified, as presented: a known key then costs one map lookup instead of a SHA-256
  // (about as much as the rest of authentication). Only issued keys get in, so it is bounded by the
  // file; it is dropped with the keys it was verified against, so a revoked key stops at once.
  let verified = new Map<string, Caller>()

  const onChange = (current: Stats, previous: Stats): void => {
    if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) return
    try {
      callers = loadCallers(file, options.rejectDemoKeys)
      verified = new Map()
      log.info({ apiKeys: { file, count: callers.size } }, 'API keys reloaded')
    } catch (error) {
      log.error({ apiKeys: { file, count: callers.size }, reason: (error as Error).message }, 'API key file not reloaded; the previous keys stay in force')
    }
  }
  watchFile(file, { interval: options.reloadIntervalMs, persistent: false }, onChange)

  return {
    callerFor: (presentedKey) => {
      const known = verified.get(presentedKey)
      if (known !== undefined || !isWellFormedApiKey(presentedKey)) return known
      const caller = callers.get(sha256Hex(presentedKey))
      if (caller !== undefined) verified.set(presentedKey, caller)
      return caller
    },
    close: () => { unwatchFile(file, onChange) },
  }
}

function loadCallers (file: string, rejectDemoKeys: boolean): Map<string, Caller> {
  const entries = parseKeyFile(file, readKeyFile(file))
  const callers = new Map<string, Caller>()
  const ids = new Set<string>()
  for (const entry of entries) {
    if (ids.has(entry.id)) throw new ApiKeyFileError(file, `the id ${entry.id} appears twice`)
    if (callers.has(entry.sha256)) throw new ApiKeyFileError(file, `the key of ${entry.id} is also issued under another id`)
    if (rejectDemoKeys && isDemoApiKeyHash(entry.sha256)) {
      throw new ApiKeyFileError(file, `${entry.id} holds a published demo key; issue a real one with npm run key:new ` +
        '(demo keys are accepted only with NXCLOUD_ALLOW_DEMO_CREDENTIALS=true)')
    }
    ids.add(entry.id)
    callers.set(entry.sha256, callerOf(entry))
  }
  return callers
}

function readKeyFile (file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw new ApiKeyFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

function parseKeyFile (file: string, text: string): ApiKeyEntry[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ApiKeyFileError(file, 'is not JSON')
  }
  if (!ApiKeyFileValidator.Check(parsed)) {
    const [first] = ApiKeyFileValidator.Errors(parsed)
    throw new ApiKeyFileError(file, 'is not a list of {id, sha256, tenants, scopes[, rateLimitMax]}' +
      (first ? ` (at ${first.instancePath || '/'}: ${first.message})` : ''))
  }
  return parsed
}

function callerOf (entry: ApiKeyEntry): Caller {
  const allTenants = entry.tenants === ALL_TENANTS || entry.tenants.includes(ALL_TENANTS)
  return {
    id: `key:${entry.id}`,
    tenants: allTenants ? ALL_TENANTS : new Set(entry.tenants),
    scopes: new Set(entry.scopes),
    ...(entry.rateLimitMax === undefined ? {} : { rateLimitMax: entry.rateLimitMax }),
  }
}
