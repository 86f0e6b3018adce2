import type { TSchema } from 'typebox'
import { HttpHeaders, headerSchemas, type AnswerHeaderField } from './headers.js'

/** What Fastify labels the JSON it serialises; bytes made once are sent with the same label. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

/**
 * The OpenAPI entry of a JSON answer in a route schema: its schema, its named examples, and the header
 * fields it carries besides X-Request-Id (which every answer carries).
 */
export function jsonResponse (description: string, schema: TSchema, examples: Record<string, unknown>, headers: readonly AnswerHeaderField[] = []) {
  return {
    description,
    headers: headerSchemas(HttpHeaders.requestId, ...headers),
    content: {
      'application/json': {
        schema,
        examples: Object.fromEntries(Object.entries(examples).map(([name, value]) => [name, { value }])),
      },
    },
  }
}
