import Type from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { problemResponse } from '../errors/problem-schema.js'
import type { PhoneListAnswer, PhoneListOutcome } from '../phones/phone-list-service.js'
import { PhoneListSchema } from '../phones/phone-schemas.js'
import { Scopes } from '../auth/caller.js'
import { SECURITY_REQUIREMENTS } from '../plugins/swagger.js'

export const TenantPhonesParamsSchema = Type.Object({
  appkey: Type.String({
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z0-9_-]+$',
    description: 'The NxCloud application key of the tenant: 1–64 of A-Z a-z 0-9 _ -.',
    examples: ['demo-shop'],
  }),
})

const cacheHeaders = {
  'x-cache': Type.Union([Type.Literal('HIT'), Type.Literal('MISS'), Type.Literal('STALE')], {
    description: 'HIT: from the cache, fresh; STALE: from the cache past its freshness (being refreshed, or NxCloud failing); MISS: from NxCloud.',
  }),
  'cache-status': Type.String({ description: 'RFC 9211: `nxcloud-bff; hit|fwd=miss|stale|request; fwd-status; ttl; stored; collapsed; detail`.' }),
  'cache-control': Type.String({
    description: '`private, max-age=<TTL>, stale-while-revalidate=<s>, stale-if-error=<s>` (with `Age`, how fresh the list is), or `no-store` when caching is off.',
  }),
  age: Type.Integer({ description: 'Seconds since the list was read from NxCloud.' }),
  'x-request-id': Type.String(),
  vary: Type.String({ description: 'The credentials headers: the answer depends on who asks.' }),
  etag: Type.String({ description: 'Strong tag of the list\'s bytes; send it as If-None-Match to get 304 while it is unchanged.' }),
}

const RETRY_AFTER_HEADERS = {
  'retry-after': Type.Integer({ description: 'Seconds until the client may call again.' }),
}

const UNAUTHENTICATED_HEADERS = {
  'www-authenticate': Type.String({ description: 'The accepted schemes (RFC 9110; RFC 6750 for Bearer).' }),
}

// Each caller reads only its own tenants: a shared cache must not hand one caller's answer to another.
const VARY_ON_CREDENTIALS = 'authorization, x-api-key'

const phoneListResponses = {
  200: {
    description: 'The tenant\'s phone numbers.',
    headers: cacheHeaders,
    content: { 'application/json': { schema: PhoneListSchema } },
  },
  400: problemResponse(400),
  401: { ...problemResponse(401), headers: UNAUTHENTICATED_HEADERS },
  403: problemResponse(403),
  404: problemResponse(404),
  429: { ...problemResponse(429), headers: RETRY_AFTER_HEADERS },
  502: problemResponse(502),
  503: { ...problemResponse(503), headers: RETRY_AFTER_HEADERS },
  504: problemResponse(504),
}

export const tenantPhonesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/tenants/:appkey/phones', {
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
        ...phoneListResponses,
        304: {
          type: 'null',
          description: 'The list is unchanged since the If-None-Match tag: no body, the same cache headers.',
          headers: cacheHeaders,
        },
      },
    },
  }, (request, reply) => {
    const { appkey } = request.params
    // An in-process hit is answered synchronously: no promise on the path that carries most traffic.
    const fromMemory = app.phoneListService.answerFromMemory(appkey, request.log)
    if (fromMemory !== undefined) {
      sendPhoneList(request.headers['if-none-match'], reply, fromMemory)
      return
    }
    return app.phoneListService.answer(appkey, request.log)
      .then((outcome) => { sendOutcome(request.headers['if-none-match'], reply, outcome) })
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
      response: phoneListResponses,
    },
  }, (request, reply) => app.phoneListService.refresh(request.params.appkey, request.log)
    .then((outcome) => { sendOutcome(undefined, reply, outcome) }))
}

function sendOutcome (ifNoneMatch: string | undefined, reply: FastifyReply, outcome: PhoneListOutcome): void {
  if (outcome.ok) {
    sendPhoneList(ifNoneMatch, reply, outcome)
    return
  }
  reply.headers({ 'x-cache': outcome.cache, 'cache-status': outcome.cacheStatus })
  throw outcome.error
}

// The body and its tag were made once, when the list was fetched: a hit sends those bytes as they are.
function sendPhoneList (ifNoneMatch: string | undefined, reply: FastifyReply, answer: PhoneListAnswer): void {
  const { entry } = answer
  reply.headers({
    'x-cache': answer.cache,
    'cache-status': answer.cacheStatus,
    'cache-control': answer.cacheControl,
    age: answer.ageSeconds,
    etag: entry.etag,
    vary: VARY_ON_CREDENTIALS,
  })
  if (ifNoneMatch !== undefined && matchesAnyTag(ifNoneMatch, entry.etag)) {
    reply.code(304).send()
    return
  }
  reply.type('application/json; charset=utf-8').send(entry.bytes)
}

// If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored; `*` matches any list.
function matchesAnyTag (ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}
