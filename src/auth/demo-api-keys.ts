/**
 * SHA-256 of the demo API keys that `npm run dev` accepts and the README publishes. Only their hashes
 * are here: production code needs nothing but to recognise them, so that a start outside the demo
 * refuses a key file holding one.
 */
const DEMO_API_KEY_HASHES = new Set([
  // the demo key for every demo tenant (test/dev/demo-credentials.ts)
  '5b09cee533de14ac55fd3520f6c562f41416a7c7c32a7f212e750373224b72f7',
  // the demo key for demo-shop only
  'd36b0d08e846836f0e44826b95e476b4830d37eeab785cf706a4dda67f1e3080',
])

export function isDemoApiKeyHash (sha256: string): boolean {
  return DEMO_API_KEY_HASHES.has(sha256)
}
