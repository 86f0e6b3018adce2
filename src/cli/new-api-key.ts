/**
 * `npm run key:new -- --id billing-svc --tenants demo-shop,demo-bank [--scopes phones:read] [--rate-limit-max 500]`
 * (in the image: `node dist/cli/new-api-key.js ...`). Prints a fresh key once, for its holder, and
 * the entry to add to API_KEYS_FILE, which holds only the key's hash.
 */
import { parseArgs } from 'node:util'
import { ApiKeyFileValidator } from '../auth/api-keys.js'
import { ALL_TENANTS, KNOWN_SCOPES, Scopes, type Scope } from '../auth/caller.js'
import { issueApiKey } from '../auth/issue-api-key.js'
import { commaSeparated } from '../config.js'

const USAGE = 'usage: npm run key:new -- --id <id> --tenants <appkey,appkey|*> [--scopes phones:read,cache:refresh] [--rate-limit-max <n>]'

function fail (message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`)
  process.exit(2)
}

const { values } = parseArgs({
  options: {
    id: { type: 'string' },
    tenants: { type: 'string' },
    scopes: { type: 'string', default: Scopes.phonesRead },
    'rate-limit-max': { type: 'string' },
  },
  strict: true,
})

if (values.id === undefined || values.tenants === undefined) fail('--id and --tenants are required')
const tenants = values.tenants.trim() === ALL_TENANTS ? ALL_TENANTS : commaSeparated(values.tenants)
const scopes = commaSeparated(values.scopes)
const unknownScopes = scopes.filter((scope) => !KNOWN_SCOPES.includes(scope as Scope))
if (unknownScopes.length > 0) fail(`unknown scope ${unknownScopes.join(', ')}; known: ${KNOWN_SCOPES.join(', ')}`)
const rateLimitMax = values['rate-limit-max'] === undefined ? undefined : Number(values['rate-limit-max'])

const { key, entry } = issueApiKey(values.id, tenants, scopes as Scope[], rateLimitMax)
if (!ApiKeyFileValidator.Check([entry])) {
  const [first] = ApiKeyFileValidator.Errors([entry])
  fail(`not a valid key entry${first ? ` (${first.instancePath}: ${first.message})` : ''}: ` +
    'the id is 1-64 of A-Z a-z 0-9 . _ : -, tenants are appkeys (1-64 of A-Z a-z 0-9 _ -) or *')
}

process.stdout.write(`API key for ${entry.id} (give it to its holder now; it is not stored and cannot be shown again):

  ${key}

Add this entry to the JSON array in API_KEYS_FILE; the service picks it up without a restart:

  ${JSON.stringify(entry)}
`)
