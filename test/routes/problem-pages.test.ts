import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { Scopes } from '../../src/auth/caller.js'
import { PROBLEM_PAGE_CONTENT_SECURITY_POLICY, problemPageOf, type ProblemPage } from '../../src/errors/problem-page.js'
import { ProblemTypes, type ProblemKind } from '../../src/errors/problem-types.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { buildTestApp, startSimulator, testConfig } from '../helper.js'
import { OPENAPI_FILE } from '../openapi-document.js'

// What a developer does with a problem's `type`: opens it, over a real socket, with no credentials
// (the service below requires API keys), in a browser or from code.

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'
const MANY = '1000'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

async function listeningService (t: Test, env: Record<string, string> = {}): Promise<string> {
  const simulator = await startSimulator(t)
  const file = writeApiKeyFile(t, [issue('svc', ['demo-shop'], [Scopes.phonesRead]).entry])
  const { app } = await buildTestApp(t, testConfig(simulator, { ...apiKeyEnv(file), RATE_LIMIT_MAX: MANY, ...env }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

async function get (origin: string, path: string, accept?: string): Promise<Answer> {
  const response = await request(`${origin}${path}`, { headers: accept === undefined ? {} : { accept } })
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() }
}

// Every `type` value the contract's problem answers allow (const, enum, or anyOf of either).
function problemTypesIn (document: unknown): Set<string> {
  const types = new Set<string>()
  const visit = (node: unknown, key?: string): void => {
    if (Array.isArray(node)) return node.forEach((item) => { visit(item, key) })
    if (node === null || typeof node !== 'object') return
    const record = node as Record<string, unknown>
    if (key === 'type') {
      for (const value of [record['const'], ...(Array.isArray(record['enum']) ? record['enum'] : [])]) {
        if (typeof value === 'string') types.add(value)
      }
      if (Array.isArray(record['anyOf'])) visit(record['anyOf'], 'type')
      return
    }
    for (const [name, value] of Object.entries(record)) visit(value, name === 'properties' ? undefined : name)
  }
  const responses = Object.values((document as { paths: Record<string, Record<string, { responses: unknown }>> }).paths)
    .flatMap((methods) => Object.values(methods).map((operation) => operation.responses))
  for (const response of responses) {
    for (const answer of Object.values(response as Record<string, { content?: Record<string, { schema: unknown }> }>)) {
      const schema = answer.content?.['application/problem+json']?.schema as { properties?: Record<string, unknown> } | undefined
      if (schema?.properties !== undefined) visit(schema.properties['type'], 'type')
    }
  }
  return types
}

const committedContract = async (): Promise<{ info: { description: string } }> =>
  JSON.parse(await readFile(OPENAPI_FILE, 'utf8')) as { info: { description: string } }

const kindOfType = new Map((Object.keys(ProblemTypes) as ProblemKind[]).map((kind) => [ProblemTypes[kind].type as string, kind]))

t.test('every problem type the contract lists opens, without credentials, as JSON and as a page', async (t) => {
  const contract = await committedContract()
  const types = problemTypesIn(contract)
  t.same([...types].sort(), [...kindOfType.keys()].sort(), 'the contract lists every type of the problem table, and only those')
  const origin = await listeningService(t)

  for (const type of types) {
    const kind = kindOfType.get(type) as ProblemKind
    const asJson = await get(origin, type, 'application/json')
    t.equal(asJson.status, 200, `GET ${type} (JSON)`)
    t.match(asJson.headers['content-type'], /^application\/json/)
    t.same(JSON.parse(asJson.body) as ProblemPage, problemPageOf(kind), `${type}: its entry of the problem table`)
    t.equal(asJson.headers['vary'], 'accept')

    const asPage = await get(origin, type, BROWSER_ACCEPT)
    t.equal(asPage.status, 200, `GET ${type} (browser)`)
    t.match(asPage.headers['content-type'], /^text\/html; charset=utf-8/)
    t.equal(asPage.headers['content-security-policy'], PROBLEM_PAGE_CONTENT_SECURITY_POLICY)
    t.equal(asPage.headers['x-content-type-options'], 'nosniff')
    t.match(asPage.body, `<h1>${ProblemTypes[kind].title.replaceAll('\'', '&#39;')}</h1>`)
    t.match(asPage.body, `HTTP ${ProblemTypes[kind].status} `)
  }
})

t.test('the contract\'s problem table links every type to its page', async (t) => {
  const { info } = await committedContract()
  const linked = [...info.description.matchAll(/\[`([^`]+)`\]\(([^)]+)\)/g)].map(([, text, target]) => ({ text, target }))
  t.same(linked.map(({ target }) => target).sort(), [...kindOfType.keys()].sort())
  for (const { text, target } of linked) t.equal(text, target, `${target} is shown as it is linked`)
})

t.test('curl, or no Accept at all, gets JSON; the answer carries the rate-limit fields of a public route', async (t) => {
  const origin = await listeningService(t)
  for (const accept of [undefined, '*/*']) {
    const answer = await get(origin, ProblemTypes.upstreamUnavailable.type, accept)
    t.equal(answer.status, 200)
    t.match(answer.headers['content-type'], /^application\/json/, `Accept: ${accept ?? '(none)'}`)
    t.match(JSON.parse(answer.body), { status: 503, retryAfter: true })
    t.equal(answer.headers['ratelimit-limit'], '1000')
    t.type(answer.headers['x-request-id'], 'string')
  }
})

t.test('HTML only for a client that prefers it; JSON for a tie, a wildcard, or an Accept that takes neither', async (t) => {
  const origin = await listeningService(t)
  const cases: Array<[string, string]> = [
    ['text/html', 'text/html'],
    ['text/*', 'text/html'],
    ['application/json;q=0.4, text/html;q=0.5', 'text/html'],
    ['application/json, text/html', 'application/json'],
    ['text/html;q=0, */*', 'application/json'],
    ['image/png', 'application/json'],
    ['garbage', 'application/json'],
  ]
  for (const [accept, mediaType] of cases) {
    const answer = await get(origin, ProblemTypes.rateLimited.type, accept)
    t.equal(answer.status, 200)
    t.match(answer.headers['content-type'], new RegExp(`^${mediaType}`), `Accept: ${accept}`)
  }
})

t.test('an unknown name is a 404 route-not-found problem', async (t) => {
  const origin = await listeningService(t)
  for (const path of ['/problems/no-such-problem', '/problems/%3Cscript%3E', '/problems/']) {
    const answer = await get(origin, path, BROWSER_ACCEPT)
    t.equal(answer.status, 404, path)
    t.match(answer.headers['content-type'], /^application\/problem\+json/)
    t.match(JSON.parse(answer.body), { type: ProblemTypes.routeNotFound.type, status: 404, instance: path })
  }
})

t.test('the pages are limited by address: past the limit a 429 whose own type page promises its Retry-After', async (t) => {
  const origin = await listeningService(t, { RATE_LIMIT_MAX: '1' })
  t.equal((await get(origin, ProblemTypes.rateLimited.type)).status, 200)
  const refused = await get(origin, ProblemTypes.rateLimited.type)
  t.equal(refused.status, 429)
  t.match(refused.headers['retry-after'], /^\d+$/)
  const problem = JSON.parse(refused.body) as { type: string }
  t.equal(problem.type, ProblemTypes.rateLimited.type)
  t.equal(problemPageOf('rateLimited').retryAfter, true, 'and the page of that type says so')
})
