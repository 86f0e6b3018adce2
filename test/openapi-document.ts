import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

/** Where the committed contract lives; `npm run openapi` rewrites it. */
export const OPENAPI_FILE = new URL('../openapi/openapi.json', import.meta.url)

/** The TypeScript types of the contract (openapi-typescript), committed beside it for typed clients. */
export const OPENAPI_TYPES_FILE = new URL('../openapi/nxcloud-bff.d.ts', import.meta.url)

// The document must not depend on who generates it: no credentials, no Redis, no listening.
const PLACEHOLDER_CREDENTIAL = 'openapi-generation'

/** The committed form of an OpenAPI document: two-space JSON with a final newline. */
export function serialiseOpenApiDocument (document: unknown): string {
  return `${JSON.stringify(document, null, 2)}\n`
}

/** Builds the real app with a fixed, credential-free configuration and returns the document it publishes. */
export async function generateOpenApiDocument (): Promise<string> {
  const config = loadConfig({
    NXCLOUD_ACCESS_KEY: PLACEHOLDER_CREDENTIAL,
    NXCLOUD_ACCESS_SECRET: PLACEHOLDER_CREDENTIAL,
    LOG_LEVEL: 'silent',
    // The contract documents both credential schemes whatever this instance accepts.
    AUTH_DISABLED: 'true',
  })
  const app = await buildApp(config)
  try {
    await app.ready()
    return serialiseOpenApiDocument(app.swagger())
  } finally {
    await app.close()
  }
}

/** The types openapi-typescript generates from a document's text (`paths`, `operations`, `components`). */
export async function generateOpenApiTypes (documentText: string): Promise<string> {
  const nodes = await openapiTS(JSON.parse(documentText) as OpenAPI3, { silent: true })
  return `${COMMENT_HEADER.trimEnd()}\n// Generated from openapi/openapi.json by \`npm run openapi\`.\n\n${astToString(nodes)}`
}
