import Type, { type Static, type TSchema } from 'typebox'
import { problemKindsWithStatus, ProblemTypes } from './problem-types.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

const problemFields = (typeSchema: TSchema) => ({
  type: typeSchema,
  title: Type.String({ description: 'Short summary of the problem type; the same for every occurrence.' }),
  status: Type.Integer({ description: 'The HTTP status code of this answer.' }),
  detail: Type.String({ description: 'What went wrong this time, for a human.' }),
  instance: Type.String({ description: 'The path of the request that failed.' }),
  requestId: Type.String({ description: 'Echoes X-Request-Id; quote it when reporting a problem.' }),
  upstreamCode: Type.Optional(Type.Integer({ description: 'The `code` NxCloud answered with, when it answered with one.' })),
})

/** RFC 9457 problem details, as every error of this service is answered. */
export const ProblemSchema = Type.Object(
  problemFields(Type.String({ description: 'Problem type URI, relative to this service (see the README).' })),
  { description: 'RFC 9457 problem details.' }
)

export type Problem = Static<typeof ProblemSchema>

/**
 * The OpenAPI response entry for one HTTP status: its schema names exactly the problem types that
 * status can carry, so generated clients can switch on `type`.
 */
export function problemResponse (status: number) {
  const kinds = problemKindsWithStatus(status)
  const types = kinds.map((kind) => Type.Literal(ProblemTypes[kind].type))
  const description = kinds.map((kind) => `${ProblemTypes[kind].type}: ${ProblemTypes[kind].title}`).join('; ')
  return {
    description,
    content: {
      [PROBLEM_CONTENT_TYPE]: {
        schema: Type.Object(problemFields(types.length === 1 ? types[0]! : Type.Union(types)), {
          description: 'RFC 9457 problem details.',
        }),
      },
    },
  }
}
