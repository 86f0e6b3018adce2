/**
 * API key files for the access tests: written to a fresh temporary directory per test (removed in
 * teardown), replaced the way Kubernetes swaps a mounted secret (a new file renamed over the old one,
 * never an in-place write), keys issued with the same code as `npm run key:new`.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { ApiKeyEntry } from '../../src/auth/api-keys.js'
import { Scopes, type Scope } from '../../src/auth/caller.js'
import { issueApiKey, type IssuedApiKey } from '../../src/auth/issue-api-key.js'

const FILE_NAME = 'api-keys.json'

interface Teardown {
  teardown (fn: () => unknown): void
}

/** The entries of a key file, or its raw text (to write a broken file). */
export type ApiKeyFileContent = ApiKeyEntry[] | string

let replacements = 0

function textOf (content: ApiKeyFileContent): string {
  return typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`
}

/** Writes a key file into a new temporary directory, removed when the test ends; returns its path. */
export function writeApiKeyFile (t: Teardown, entries: ApiKeyFileContent): string {
  const dir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-api-keys-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, FILE_NAME)
  writeFileSync(file, textOf(entries))
  return file
}

/**
 * Replaces the key file atomically: the new content is written next to it and renamed over it, so a
 * reader sees the old file or the new one, never half of one (and the file's inode changes, as when
 * Kubernetes updates a secret).
 */
export function replaceApiKeyFile (file: string, entries: ApiKeyFileContent): void {
  const next = join(dirname(file), `.${FILE_NAME}.${process.pid}.${++replacements}.tmp`)
  writeFileSync(next, textOf(entries))
  renameSync(next, file)
}

/** A fresh key and its file entry; `phones:read` unless scopes are given. */
export function issue (id: string, tenants: ApiKeyEntry['tenants'], scopes: Scope[] = [Scopes.phonesRead], rateLimitMax?: number): IssuedApiKey {
  return issueApiKey(id, tenants, scopes, rateLimitMax)
}

/** The variables that turn API keys on for `testConfig` (which defaults to AUTH_DISABLED=true). */
export function apiKeyEnv (file: string): Record<string, string> {
  return { API_KEYS_FILE: file, API_KEYS_RELOAD_INTERVAL_MS: '50', AUTH_DISABLED: 'false' }
}
