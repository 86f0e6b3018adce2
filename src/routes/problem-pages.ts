import fastifyAccepts from '@fastify/accepts'
import Type from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ProblemError } from '../errors/problem-error.js'
import {
  PROBLEM_PAGE_CONTENT_SECURITY_POLICY,
  PROBLEM_PAGES_PATH,
  ProblemPageSchema,
  problemNameOf,
  problemPageHtml,
  problemPageOf,
  type ProblemPage,
} from '../errors/problem-page.js'
import { EVERY_OPERATION_PROBLEM_STATUSES, problemResponses } from '../errors/problem-schema.js'
import { ProblemTypes, type ProblemKind } from '../errors/problem-types.js'
import { HttpHeaders, RATE_LIMIT_HEADERS, headerSchemas } from '../http/headers.js'
import { JSON_CONTENT_TYPE } from '../http/responses.js'
import { NO_SECURITY } from '../auth/openapi-security.js'

const JSON_MEDIA_TYPE = 'application/json'
const HTML_MEDIA_TYPE = 'text/html'
// JSON unless the client prefers HTML (a browser does): a tie, `*/*`, or an Accept that takes neither
// (RFC 9110 §12.5.1 lets a server disregard it rather than answer 406) is JSON.
const OFFERS = [JSON_MEDIA_TYPE, HTML_MEDIA_TYPE]
const EXAMPLE_KIND: ProblemKind = 'rateLimited'

const ProblemPageParamsSchema = Type.Object({
  name: Type.String({
    description: 'The problem type\'s name: the last segment of its `type` URI.',
    examples: [problemNameOf(EXAMPLE_KIND)],
  }),
})

interface RenderedPage {
  json: ProblemPage
  html: string
}

// The table does not change while the process runs: every page is made once.
const pages = new Map<string, RenderedPage>((Object.keys(ProblemTypes) as ProblemKind[]).map((kind) => {
  const json = problemPageOf(kind)
  return [problemNameOf(kind), { json, html: problemPageHtml(json) }]
}))

const EXAMPLE_PAGE = problemPageOf(EXAMPLE_KIND)

/**
 * Each problem type's URI dereferences to a page on it (RFC 9457 §3.1.1): when it happens and what a
 * caller should do, as HTML for a browser and as JSON otherwise. Public, like the contract.
 */
export const problemPagesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(fastifyAccepts)
  app.get(`${PROBLEM_PAGES_PATH}:name`, {
    schema: {
      operationId: 'getProblemType',
      summary: 'A problem type, explained',
      description: 'What the problem `type` URIs of this service\'s answers lead to: the type\'s title and status, when it ' +
        'happens, what a caller should do and whether its answers carry Retry-After. HTML when the request\'s Accept ' +
        'prefers `text/html` (a browser), JSON otherwise. Needs no credentials; rate limited by address.',
      tags: ['problems'],
      security: NO_SECURITY,
      params: ProblemPageParamsSchema,
      response: {
        200: {
          description: 'The page of the problem type.',
          headers: headerSchemas(HttpHeaders.requestId, ...RATE_LIMIT_HEADERS),
          content: {
            [JSON_MEDIA_TYPE]: { schema: ProblemPageSchema, examples: { [problemNameOf(EXAMPLE_KIND)]: { value: EXAMPLE_PAGE } } },
            [HTML_MEDIA_TYPE]: {
              schema: Type.String({ description: 'The same, as a page: no script, no style.' }),
              examples: { [problemNameOf(EXAMPLE_KIND)]: { value: problemPageHtml(EXAMPLE_PAGE) } },
            },
          },
        },
        ...problemResponses([...EVERY_OPERATION_PROBLEM_STATUSES, 404, 429], {
          examplePath: EXAMPLE_PAGE.type,
          routeHeaders: [...RATE_LIMIT_HEADERS],
        }),
      },
    },
  }, (request, reply) => {
    const page = pages.get(request.params.name)
    if (page === undefined) {
      throw new ProblemError('routeNotFound', `No problem type is named ${JSON.stringify(request.params.name)}; /openapi.json lists them`)
    }
    reply.header(HttpHeaders.vary.name, HttpHeaders.accept.name)
    if (request.accepts().type(OFFERS) === HTML_MEDIA_TYPE) {
      reply.header(HttpHeaders.contentSecurityPolicy.name, PROBLEM_PAGE_CONTENT_SECURITY_POLICY)
      reply.type(`${HTML_MEDIA_TYPE}; charset=utf-8`).send(page.html)
      return
    }
    reply.type(JSON_CONTENT_TYPE).send(page.json)
  })
}
