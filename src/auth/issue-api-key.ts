import { randomBytes } from 'node:crypto'
import { sha256Hex, type ApiKeyEntry } from './api-keys.js'
import type { Scope } from './caller.js'

const KEY_PREFIX = 'nxbff_'
const KEY_RANDOM_BYTES = 32

export interface IssuedApiKey {
  /** Shown once to whoever issues it; never stored. */
  key: string
  /** What goes into API_KEYS_FILE. */
  entry: ApiKeyEntry
}

/** A fresh key of 32 random bytes (base64url, with a prefix that secret scanners can match) and its entry. */
export function issueApiKey (id: string, tenants: ApiKeyEntry['tenants'], scopes: Scope[], rateLimitMax?: number): IssuedApiKey {
  const key = `${KEY_PREFIX}${randomBytes(KEY_RANDOM_BYTES).toString('base64url')}`
  const entry: ApiKeyEntry = {
    id,
    sha256: sha256Hex(key),
    tenants,
    scopes,
    ...(rateLimitMax === undefined ? {} : { rateLimitMax }),
  }
  return { key, entry }
}
