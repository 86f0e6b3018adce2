import { readFileSync } from 'node:fs'

// Read once at start from the package that is deployed, so the OpenAPI version follows releases.
const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

export const SERVICE_VERSION = packageJson.version
