import Type from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { EVERY_OPERATION_PROBLEM_STATUSES, problemResponses } from '../errors/problem-schema.js'
import { RATE_LIMIT_HEADERS } from '../http/headers.js'
import { JSON_CONTENT_TYPE, jsonResponse } from '../http/responses.js'
import { NO_SECURITY } from '../auth/openapi-security.js'

const OPENAPI_PATH = '/openapi.json'

// Only the version is named: the rest passes through as @fastify/swagger built it.
const OpenApiDocumentSchema = Type.Object({ openapi: Type.String() }, {
  additionalProperties: true,
  description: 'An OpenAPI 3.1 document.',
})

/** Serves the contract other services generate their clients from. */
export const openApiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(OPENAPI_PATH, {
    schema: {
      operationId: 'getOpenApiDocument',
      summary: 'This contract',
      description: 'The OpenAPI 3.1 document of this service, generated from its route schemas; the page at /docs shows it.',
      tags: ['operations'],
      security: NO_SECURITY,
      response: {
        200: jsonResponse('The OpenAPI document.', OpenApiDocumentSchema, { 'document-head': { openapi: '3.1.0' } }),
        ...problemResponses([...EVERY_OPERATION_PROBLEM_STATUSES, 429], { examplePath: OPENAPI_PATH, routeHeaders: [...RATE_LIMIT_HEADERS] }),
      },
    },
  }, (_request, reply) => {
    // The document is a few hundred KiB: serialised once, not per answer (see plugins/swagger.ts).
    reply.type(JSON_CONTENT_TYPE).send(app.openApiDocumentJson())
  })
}
