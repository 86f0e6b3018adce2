/**
 * `npm run openapi`: writes the OpenAPI document the service publishes at GET /openapi.json to
 * openapi/openapi.json, so the contract is reviewed in diffs. test/openapi.test.ts fails when they drift.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { OPENAPI_FILE, generateOpenApiDocument } from './openapi-document.js'

await mkdir(new URL('.', OPENAPI_FILE), { recursive: true })
await writeFile(OPENAPI_FILE, await generateOpenApiDocument(), 'utf8')
process.stdout.write(`wrote ${fileURLToPath(OPENAPI_FILE)}\n`)
