/**
 * The demo API keys of `npm run dev`, published in the README. `npm start` refuses a key file that
 * holds one (src/auth/demo-api-keys.ts knows their hashes), as it refuses the demo NxCloud credentials.
 */
import { ALL_TENANTS, Scopes } from '../../src/auth/caller.js'
import { sha256Hex, type ApiKeyEntry } from '../../src/auth/api-keys.js'

export const DEMO_API_KEY_ALL_TENANTS = 'nxbff-demo-key-all-tenants-000000000000000000000000000000'
export const DEMO_API_KEY_SHOP_ONLY = 'nxbff-demo-key-demo-shop-only-00000000000000000000000000'

export const DEMO_API_KEY_ENTRIES: ApiKeyEntry[] = [
  { id: 'demo-all-tenants', sha256: sha256Hex(DEMO_API_KEY_ALL_TENANTS), tenants: ALL_TENANTS, scopes: [Scopes.phonesRead, Scopes.cacheRefresh] },
  { id: 'demo-shop-only', sha256: sha256Hex(DEMO_API_KEY_SHOP_ONLY), tenants: ['demo-shop'], scopes: [Scopes.phonesRead] },
]
