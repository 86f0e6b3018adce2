/**
 * `npm run openapi`: writes the OpenAPI document the service publishes at GET /openapi.json to
 * openapi/openapi.json and its TypeScript types to openapi/nxcloud-bff.d.ts, so the contract is reviewed
 * in diffs. test/openapi.test.ts fails when either drifts.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { OPENAPI_FILE, OPENAPI_TYPES_FILE, generateOpenApiDocument, generateOpenApiTypes } from './openapi-document.js'

const document = await generateOpenApiDocument()
await mkdir(new URL('.', OPENAPI_FILE), { recursive: true })
await writeFile(OPENAPI_FILE, document, 'utf8')
await writeFile(OPENAPI_TYPES_FILE, await generateOpenApiTypes(document), 'utf8')
process.stdout.write(`wrote ${fileURLToPath(OPENAPI_FILE)} and ${fileURLToPath(OPENAPI_TYPES_FILE)}\n`)
