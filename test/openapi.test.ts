import { readFile } from 'node:fs/promises'
import t from 'tap'
import type { Test } from 'tap'
import { problemKindsWithStatus, ProblemTypes } from '../src/errors/problem-types.js'
import { TenantPhonesParamsSchema } from '../src/routes/tenant-phones.js'
import { buildTestApp, startSimulator, testConfig } from './helper.js'
import { OPENAPI_FILE, generateOpenApiDocument, serialiseOpenApiDocument } from './openapi-document.js'

const REGENERATE = 'openapi/openapi.json is out of date: run `npm run openapi` and commit the result'
const PHONES_PATH = '/tenants/{appkey}/phones'
const REFRESH_PATH = '/tenants/{appkey}/phones/refresh'
const DOCUMENTED_ERROR_STATUSES = [400, 401, 403, 404, 429, 502, 503, 504]

interface Schema {
  const?: unknown
  enum?: unknown[]
  anyOf?: Schema[]
  properties?: Record<string, Schema>
}

interface OpenApiDocument {
  openapi: string
  components?: { securitySchemes?: Record<string, Record<string, unknown>> }
  paths: Record<string, Record<string, {
    security?: Array<Record<string, string[]>>
    parameters?: Array<{ in: string, name: string, required?: boolean, description?: string, schema: Record<string, unknown> }>
    responses: Record<string, { content?: Record<string, { schema: Schema }> }>
  }>>
}

async function publishedDocument (t: Test): Promise<{ text: string, document: OpenApiDocument }> {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const response = await app.inject('/openapi.json')
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^application\/json/)
  return { text: response.body, document: response.json<OpenApiDocument>() }
}

// The literal values a schema allows, however the generator spelled them (const, enum, anyOf of either).
function allowedValues (schema: Schema | undefined): unknown[] {
  if (schema === undefined) return []
  if (schema.const !== undefined) return [schema.const]
  if (schema.enum !== undefined) return schema.enum
  return (schema.anyOf ?? []).flatMap(allowedValues)
}

t.test('the committed openapi/openapi.json is what the running server publishes', async (t) => {
  const { text, document } = await publishedDocument(t)
  const committedText = await readFile(OPENAPI_FILE, 'utf8').catch(() => undefined)
  if (committedText === undefined) return t.fail('openapi/openapi.json is missing: run `npm run openapi`')
  t.same(JSON.parse(committedText), document, REGENERATE)
  t.equal(committedText, serialiseOpenApiDocument(JSON.parse(text)), REGENERATE)
})

t.test('npm run openapi writes the document the server publishes', async (t) => {
  const { text } = await publishedDocument(t)
  t.equal(await generateOpenApiDocument(), serialiseOpenApiDocument(JSON.parse(text)))
})

t.test('the document is OpenAPI 3.1.0', async (t) => {
  const { document } = await publishedDocument(t)
  t.equal(document.openapi, '3.1.0')
})

t.test('the phone list documents its answer and every problem type each status can carry', async (t) => {
  const { document } = await publishedDocument(t)
  const operation = document.paths[PHONES_PATH]?.['get']
  if (operation === undefined) return t.fail(`${PHONES_PATH} GET is not documented`)

  t.same(Object.keys(operation.responses).sort(), ['200', '304', ...DOCUMENTED_ERROR_STATUSES.map(String)].sort())
  t.same(Object.keys(operation.responses['304']?.content ?? {}), [], 'a 304 has no body')
  t.same(Object.keys(operation.responses['200']?.content ?? {}), ['application/json'])
  for (const status of DOCUMENTED_ERROR_STATUSES) {
    const content = operation.responses[String(status)]?.content ?? {}
    t.same(Object.keys(content), ['application/problem+json'], `${status} is a problem`)
    const typeSchema = content['application/problem+json']?.schema.properties?.['type']
    const expected = problemKindsWithStatus(status).map((kind) => ProblemTypes[kind].type)
    t.ok(expected.length > 0, `ProblemTypes has a kind with status ${status}`)
    t.same([...allowedValues(typeSchema)].sort(), [...expected].sort(), `${status} lists exactly its problem types`)
  }
})

t.test('the appkey parameter documents its pattern and length bounds', async (t) => {
  const { document } = await publishedDocument(t)
  const parameters = document.paths[PHONES_PATH]?.['get']?.parameters ?? []
  const appkey = parameters.find((parameter) => parameter.in === 'path' && parameter.name === 'appkey')
  if (appkey === undefined) return t.fail('the appkey path parameter is not documented')
  const { pattern, minLength, maxLength } = TenantPhonesParamsSchema.properties.appkey as unknown as Record<string, unknown>
  t.equal(appkey.required, true)
  t.match(appkey.schema, { type: 'string', pattern, minLength, maxLength })
  t.same([appkey.schema['pattern'], appkey.schema['minLength'], appkey.schema['maxLength']], ['^[A-Za-z0-9_-]+$', 1, 64])
  t.type(appkey.description, 'string')
})

t.test('the probes are documented and the document does not list itself', async (t) => {
  const { document } = await publishedDocument(t)
  t.ok(document.paths['/healthz']?.['get'], '/healthz is documented')
  t.ok(document.paths['/readyz']?.['get'], '/readyz is documented')
  t.same(Object.keys(document.paths['/readyz']?.['get']?.responses ?? {}).sort(), ['200', '503'])
  t.equal(document.paths['/openapi.json'], undefined, '/openapi.json is hidden')
  t.same(Object.keys(document.paths).sort(), ['/healthz', '/readyz', PHONES_PATH, REFRESH_PATH].sort())
})

t.test('both credential schemes are documented and the phone list requires one of them; the probes need none', async (t) => {
  const { document } = await publishedDocument(t)
  t.same(document.components?.securitySchemes?.['apiKey'], {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: document.components?.securitySchemes?.['apiKey']?.['description'],
  })
  t.match(document.components?.securitySchemes?.['bearer'], { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  t.same(document.paths[PHONES_PATH]?.['get']?.security, [{ apiKey: [] }, { bearer: [] }], 'either scheme opens the operation')
  t.equal(document.paths['/healthz']?.['get']?.security, undefined)
  t.equal(document.paths['/readyz']?.['get']?.security, undefined)
})

t.test('the refresh operation is documented with its answers and both credential schemes', async (t) => {
  const { document } = await publishedDocument(t)
  const operation = document.paths[REFRESH_PATH]?.['post']
  if (operation === undefined) return t.fail(`${REFRESH_PATH} POST is not documented`)
  t.same(Object.keys(operation.responses).sort(), ['200', ...DOCUMENTED_ERROR_STATUSES.map(String)].sort())
  t.same(operation.security, [{ apiKey: [] }, { bearer: [] }])
})
