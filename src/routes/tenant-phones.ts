import Type from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { EVERY_OPERATION_PROBLEM_STATUSES, problemResponses } from '../errors/problem-schema.js'
import { HttpHeaders, RATE_LIMIT_HEADERS, headerSchemas } from '../http/headers.js'
import { JSON_CONTENT_TYPE, jsonResponse } from '../http/responses.js'
import type { PhoneListAnswer, PhoneListOutcome } from '../phones/phone-list-service.js'
import { PHONE_LIST_EXAMPLE, PhoneListSchema } from '../phones/phone-schemas.js'
import { Scopes } from '../auth/caller.js'
import { SECURITY_REQUIREMENTS } from '../auth/openapi-security.js'

/** What an appkey may be: 1–64 of A-Z a-z 0-9 _ - (NxCloud's own keys fit; anything else never reaches it). */
const APPKEY_FORMAT = { minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const

export const TenantPhonesParamsSchema = Type.Object({
  appkey: Type.String({
    ...APPKEY_FORMAT,
    description: 'The NxCloud application key of the tenant: 1–64 of A-Z a-z 0-9 _ -.',
    examples: ['demo-shop'],
  }),
})

// Every answer of the route describes where the list came from and how fresh it is.
const LIST_HEADERS = [
  HttpHeaders.cache, HttpHeaders.cacheStatus, HttpHeaders.cacheControl, HttpHeaders.age, HttpHeaders.etag, HttpHeaders.vary,
]

const TENANT_PHONES_ROUTE = '/tenants/:appkey/phones'

const LIST_EXAMPLE_PATH = '/tenants/demo-shop/phones'
const PROBLEM_STATUSES = [...EVERY_OPERATION_PROBLEM_STATUSES, 401, 403, 404, 429, 502, 503, 504]
// Cache-Status is on every answer of the route, errors included (RFC 9211), as are the rate limiter's fields.
const PROBLEM_HEADERS = [HttpHeaders.cacheStatus, ...RATE_LIMIT_HEADERS]

function phoneListResponses (examplePath: string) {
  return {
    200: jsonResponse('The tenant\'s phone numbers.', PhoneListSchema, { 'demo-shop': PHONE_LIST_EXAMPLE }, [...LIST_HEADERS, ...RATE_LIMIT_HEADERS]),
    ...problemResponses(PROBLEM_STATUSES, { examplePath, routeHeaders: PROBLEM_HEADERS }),
  }
}

export const tenantPhonesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(TENANT_PHONES_ROUTE, {
    config: { access: { scope: Scopes.phonesRead, tenantParam: 'appkey' }, reportsCacheStatus: true },
    schema: {
      operationId: 'listTenantPhones',
      summary: 'List the WhatsApp phone numbers of a tenant',
      description: 'Answers from the shared cache when the list is fresh (or, for a while, stale: see Cache-Status), ' +
        'otherwise from NxCloud. ' +
        `Needs an API key or a bearer token with the scope \`${Scopes.phonesRead}\` whose tenants include the appkey.`,
      tags: ['tenants'],
      security: SECURITY_REQUIREMENTS,
      params: TenantPhonesParamsSchema,
      response: {
        ...phoneListResponses(LIST_EXAMPLE_PATH),
        304: {
          type: 'null',
          description: 'The list is unchanged since the If-None-Match tag: no body, the same cache headers.',
          headers: headerSchemas(HttpHeaders.requestId, ...LIST_HEADERS, ...RATE_LIMIT_HEADERS),
        },
      },
    },
  }, (request, reply) => {
    const { appkey } = request.params
    // An in-process hit is answered synchronously: no promise on the path that carries most traffic.
    const fromMemory = app.phoneListService.answerFromMemory(appkey, request.log)
    if (fromMemory !== undefined) {
      sendPhoneList(request.headers[HttpHeaders.ifNoneMatch.name], reply, fromMemory)
      return
    }
    return app.phoneListService.answer(appkey, request.log)
      .then((outcome) => { sendOutcome(request.headers[HttpHeaders.ifNoneMatch.name], reply, outcome) })
  })

  app.post('/tenants/:appkey/phones/refresh', {
    config: { access: { scope: Scopes.cacheRefresh, tenantParam: 'appkey' }, reportsCacheStatus: true },
    schema: {
      operationId: 'refreshTenantPhones',
      summary: 'Read a tenant\'s phone numbers from NxCloud now and replace the cached list',
      description: 'Fetches the list from NxCloud whatever the cache holds, stores it for every instance and ' +
        `answers it. Needs the scope \`${Scopes.cacheRefresh}\` and the appkey among the caller's tenants.`,
      tags: ['tenants'],
      security: SECURITY_REQUIREMENTS,
      params: TenantPhonesParamsSchema,
      response: phoneListResponses(`${LIST_EXAMPLE_PATH}/refresh`),
    },
  }, (request, reply) => app.phoneListService.refresh(request.params.appkey, request.log)
    .then((outcome) => { sendOutcome(undefined, reply, outcome) }))
}

function sendOutcome (ifNoneMatch: string | undefined, reply: FastifyReply, outcome: PhoneListOutcome): void {
  if (outcome.ok) {
    sendPhoneList(ifNoneMatch, reply, outcome)
    return
  }
  reply.header(HttpHeaders.cache.name, outcome.cache).header(HttpHeaders.cacheStatus.name, outcome.cacheStatus)
  throw outcome.error
}

// The body and its tag were made once, when the list was fetched: a hit sends those bytes as they are.
function sendPhoneList (ifNoneMatch: string | undefined, reply: FastifyReply, answer: PhoneListAnswer): void {
  const { entry } = answer
  reply.header(HttpHeaders.cache.name, answer.cache)
    .header(HttpHeaders.cacheStatus.name, answer.cacheStatus)
    .header(HttpHeaders.cacheControl.name, answer.cacheControl)
    .header(HttpHeaders.age.name, answer.ageSeconds)
    .header(HttpHeaders.etag.name, entry.etag)
    .header(HttpHeaders.vary.name, HttpHeaders.vary.value)
  if (ifNoneMatch !== undefined && matchesAnyTag(ifNoneMatch, entry.etag)) {
    reply.code(304).send()
    return
  }
  reply.type(JSON_CONTENT_TYPE).send(entry.bytes)
}

// If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored; `*` matches any list.
function matchesAnyTag (ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}
