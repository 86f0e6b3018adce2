import { readFile } from 'node:fs/promises'
import t from 'tap'
import type { Test } from 'tap'
import { problemKindsWithStatus, ProblemTypes } from '../src/errors/problem-types.js'
import { HttpHeaders } from '../src/http/headers.js'
import { TenantPhonesParamsSchema } from '../src/routes/tenant-phones.js'
import { PHONE_LIST_EXAMPLE, type PhoneList } from '../src/phones/phone-schemas.js'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from './helper.js'
import {
  OPENAPI_FILE,
  OPENAPI_TYPES_FILE,
  generateOpenApiDocument,
  generateOpenApiTypes,
  serialiseOpenApiDocument,
} from './openapi-document.js'

const REGENERATE = 'openapi/openapi.json is out of date: run `npm run openapi` and commit the result'
const REGENERATE_TYPES = 'openapi/nxcloud-bff.d.ts is out of date: run `npm run openapi` and commit the result'
const PHONES_PATH = '/tenants/{appkey}/phones'
const REFRESH_PATH = '/tenants/{appkey}/phones/refresh'
const PUBLIC_PATHS = ['/healthz', '/readyz', '/openapi.json', '/problems/{name}']
// Every operation: a request that is not valid HTTP, another method on the path, too slow, an expectation not met, too large, a bug.
const EVERY_OPERATION_ERROR_STATUSES = [400, 405, 408, 417, 431, 500]
const DOCUMENTED_ERROR_STATUSES = [...EVERY_OPERATION_ERROR_STATUSES, 401, 403, 404, 429, 502, 503, 504]
const RATE_LIMIT_HEADER_NAMES = [HttpHeaders.rateLimitLimit.name, HttpHeaders.rateLimitRemaining.name, HttpHeaders.rateLimitReset.name]

interface Schema {
  const?: unknown
  enum?: unknown[]
  anyOf?: Schema[]
  properties?: Record<string, Schema>
}

interface MediaType {
  schema: Schema
  examples?: Record<string, { summary?: string, value: Record<string, unknown> }>
}

interface Response {
  description: string
  headers?: Record<string, { schema: Schema, description?: string }>
  content?: Record<string, MediaType>
}

interface Operation {
  operationId?: string
  summary?: string
  description?: string
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, required?: boolean, description?: string, schema: Record<string, unknown> }>
  responses: Record<string, Response>
}

interface OpenApiDocument {
  openapi: string
  info: { title: string, version: string, contact?: Record<string, string>, license?: Record<string, string> }
  servers?: Array<{ url: string }>
  components?: { securitySchemes?: Record<string, Record<string, unknown>> }
  paths: Record<string, Record<string, Operation>>
}

function operationsOf (document: OpenApiDocument): Array<[string, Operation]> {
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]): [string, Operation] => [`${method.toUpperCase()} ${path}`, operation]))
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

t.test('the committed openapi/nxcloud-bff.d.ts is what openapi-typescript makes of the published document', async (t) => {
  const { text } = await publishedDocument(t)
  const committedTypes = await readFile(OPENAPI_TYPES_FILE, 'utf8').catch(() => undefined)
  if (committedTypes === undefined) return t.fail('openapi/nxcloud-bff.d.ts is missing: run `npm run openapi`')
  t.equal(committedTypes, await generateOpenApiTypes(text), REGENERATE_TYPES)
})

t.test('the document is OpenAPI 3.1.0 with a relative server, a contact and a license', async (t) => {
  const { document } = await publishedDocument(t)
  t.equal(document.openapi, '3.1.0')
  t.same(document.servers?.map(({ url }) => url), ['/'], 'clients are given the origin (openapi-fetch baseUrl)')
  t.type(document.info.contact?.['name'], 'string')
  t.type(document.info.license?.['identifier'], 'string')
})

t.test('every operation has an operationId, a summary, a description, a 4xx answer and a security requirement', async (t) => {
  const { document } = await publishedDocument(t)
  const operations = operationsOf(document)
  t.ok(operations.length >= 5, 'the phone list, its refresh, both probes and the contract')
  const ids = new Set<string>()
  for (const [name, operation] of operations) {
    t.match(operation.operationId, /^[a-z][A-Za-z]+$/, `${name} has an operationId`)
    ids.add(operation.operationId ?? '')
    t.type(operation.summary, 'string', `${name} has a summary`)
    t.ok((operation.description ?? '').length > 20, `${name} has a description`)
    t.ok(Object.keys(operation.responses).some((status) => status.startsWith('4')), `${name} documents a 4xx`)
    t.ok(Array.isArray(operation.security), `${name} says which credentials it needs, if any`)
    for (const status of EVERY_OPERATION_ERROR_STATUSES) {
      t.ok(operation.responses[String(status)], `${name} documents ${status}`)
    }
  }
  t.equal(ids.size, operations.length, 'operationIds are unique')
})

t.test('each problem answer carries an example of every problem type of its status, from the problem table', async (t) => {
  const { document } = await publishedDocument(t)
  for (const [name, operation] of operationsOf(document)) {
    for (const [status, response] of Object.entries(operation.responses)) {
      const problem = response.content?.['application/problem+json']
      if (problem === undefined) continue
      const examples = Object.values(problem.examples ?? {}).map(({ value }) => value)
      const expected = problemKindsWithStatus(Number(status)).map((kind) => {
        const { type, title, status } = ProblemTypes[kind]
        return { type, title, status }
      })
      t.same(examples.map(({ type, title, status }) => ({ type, title, status })), expected, `${name} ${status}`)
    }
  }
})

t.test('the phone list answer has an example, and every answer says what it carries', async (t) => {
  const { document } = await publishedDocument(t)
  const operation = document.paths[PHONES_PATH]?.['get']
  if (operation === undefined) return t.fail(`${PHONES_PATH} GET is not documented`)
  const { responses } = operation
  t.match(Object.values(responses['200']?.content?.['application/json']?.examples ?? {})[0]?.value, {
    appkey: 'demo-shop',
    phones: [{ displayPhoneNumber: String }],
  })
  const headersOf = (status: string) => Object.keys(responses[status]?.headers ?? {})
  for (const status of Object.keys(responses)) t.ok(headersOf(status).includes('x-request-id'), `${status} carries X-Request-Id`)
  for (const status of ['200', '304', '401', '403', '404', '429', '502', '503', '504']) {
    t.same(RATE_LIMIT_HEADER_NAMES.filter((name) => headersOf(status).includes(name)), RATE_LIMIT_HEADER_NAMES, `${status} carries the rate-limit fields`)
  }
  t.ok(headersOf('429').includes('retry-after'), '429 carries Retry-After')
  t.ok(headersOf('503').includes('retry-after'), '503 carries Retry-After')
  t.ok(headersOf('401').includes('www-authenticate'), '401 carries WWW-Authenticate')
  t.ok(headersOf('405').includes('allow'), '405 carries Allow')
  t.notOk(headersOf('405').includes(HttpHeaders.rateLimitRemaining.name), '405 is answered before any route, so without the limiter')
  for (const name of ['etag', 'cache-control', 'age', 'x-cache', 'cache-status', 'vary']) {
    t.ok(headersOf('200').includes(name), `200 carries ${name}`)
  }
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

t.test('the phone list example is what the service answers for the simulator\'s demo-shop', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const answer = await app.inject(phonesUrl('demo-shop'))
  t.equal(answer.statusCode, 200)
  const { fetchedAt, ...list } = answer.json<PhoneList>()
  const { fetchedAt: exampleFetchedAt, ...example } = PHONE_LIST_EXAMPLE
  t.same(list, example)
  t.equal(typeof fetchedAt, typeof exampleFetchedAt)
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

t.test('the probes, the contract itself and the problem pages are documented; the docs page is not an operation', async (t) => {
  const { document } = await publishedDocument(t)
  for (const path of PUBLIC_PATHS) t.ok(document.paths[path]?.['get'], `${path} is documented`)
  t.same(Object.keys(document.paths['/readyz']?.['get']?.responses ?? {}).sort(), ['200', '503', ...EVERY_OPERATION_ERROR_STATUSES.map(String)].sort())
  t.same(Object.keys(document.paths['/readyz']?.['get']?.responses['503']?.content ?? {}), ['application/json'], 'a 503 readiness is a readiness body')
  t.same(Object.keys(document.paths).sort(), [...PUBLIC_PATHS, PHONES_PATH, REFRESH_PATH].sort())
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
  for (const path of PUBLIC_PATHS) t.same(document.paths[path]?.['get']?.security, [], `${path} needs no credentials`)
})

t.test('the refresh operation is documented with its answers and both credential schemes', async (t) => {
  const { document } = await publishedDocument(t)
  const operation = document.paths[REFRESH_PATH]?.['post']
  if (operation === undefined) return t.fail(`${REFRESH_PATH} POST is not documented`)
  t.same(Object.keys(operation.responses).sort(), ['200', ...DOCUMENTED_ERROR_STATUSES.map(String)].sort())
  t.same(operation.security, [{ apiKey: [] }, { bearer: [] }])
})
