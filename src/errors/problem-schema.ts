import Type, { type Static, type TSchema } from 'typebox'
import { HttpHeaders, headerSchemas, type AnswerHeaderField } from '../http/headers.js'
import { ProblemExamples } from './problem-examples.js'
import { problemKindsWithStatus, problemTypeOf, ProblemTypes, type ProblemKind } from './problem-types.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

const INSTANCE_DESCRIPTION = 'The path of the request that failed.'
// RFC 9457 §3.1.1: a type URI that can be dereferenced documents its problem.
const TYPE_DESCRIPTION = 'The problem type, a URI relative to this service: GET it for a page on when it happens and what to do.'

const problemFields = (typeSchema: TSchema) => ({
  type: typeSchema,
  title: Type.String({ description: 'Short summary of the problem type; the same for every occurrence.' }),
  status: Type.Integer({ description: 'The HTTP status code of this answer.' }),
  detail: Type.String({ description: 'What went wrong this time, for a human.' }),
  instance: Type.String({ description: INSTANCE_DESCRIPTION }),
  requestId: Type.String({ description: 'Echoes X-Request-Id; quote it when reporting a problem.' }),
  upstreamCode: Type.Optional(Type.Integer({ description: 'The `code` NxCloud answered with, when it answered with one.' })),
})

/** RFC 9457 problem details, as every error of this service is answered. */
export const ProblemSchema = Type.Object(
  problemFields(Type.String({ description: TYPE_DESCRIPTION })),
  { description: 'RFC 9457 problem details.' }
)

export type Problem = Static<typeof ProblemSchema>

/** A problem as answered: without `instance` when it was answered before the request line was read. */
export type ProblemBody = Omit<Problem, 'instance'> & { instance?: string }

/** What one occurrence of a problem says, in the order the contract lists the fields. */
interface Occurrence {
  detail: string
  instance: string | undefined
  requestId: string
  upstreamCode?: number | undefined
}

/** The body of one problem of `kind`: the kind's type, title and status, then the occurrence's defined fields. */
export function problemBody (kind: ProblemKind, occurrence: Occurrence): ProblemBody {
  const { type, title, status } = ProblemTypes[kind]
  const body: Record<string, unknown> = { type, title, status }
  for (const [field, value] of Object.entries(occurrence)) if (value !== undefined) body[field] = value
  return body as ProblemBody
}

// Header fields a status always carries, whoever answers it; Retry-After comes with the kinds the table marks.
const HEADERS_OF_STATUS: Partial<Record<number, AnswerHeaderField[]>> = {
  401: [HttpHeaders.wwwAuthenticate],
  405: [HttpHeaders.allow],
}

function headersOfStatus (status: number): AnswerHeaderField[] {
  const retryAfter = problemKindsWithStatus(status).some((kind) => problemTypeOf(kind).retryAfter === true)
  return [...HEADERS_OF_STATUS[status] ?? [], ...(retryAfter ? [HttpHeaders.retryAfter] : [])]
}

// Answered before a route is chosen (the not-found handler, Node's HTTP layer): no route hook adds its headers.
const ANSWERED_BEFORE_ROUTING = new Set<number>([
  ProblemTypes.methodNotAllowed.status,
  ProblemTypes.requestTimeout.status,
  ProblemTypes.expectationFailed.status,
  ProblemTypes.requestHeadTooLarge.status,
])

/**
 * The statuses every operation can answer, whatever it does: a request that is not valid HTTP, another
 * method on its path, a request or head too slow or too large, an expectation it cannot meet, and a bug.
 */
export const EVERY_OPERATION_PROBLEM_STATUSES = [400, 405, 408, 417, 431, 500] as const

export interface ProblemResponseOptions {
  /** The path the examples' `instance` shows: a request to the operation. */
  examplePath: string
  /** Header fields the route adds to each of its answers (the rate limiter's). */
  routeHeaders?: AnswerHeaderField[]
}

const EXAMPLE_REQUEST_ID = '5b0c8c0e-1d0f-4c55-9d0a-4f4f1f7c2a11'

function exampleOf (kind: ProblemKind, examplePath: string): Record<string, unknown> {
  const { detail, upstreamCode, beforeRequestLine } = ProblemExamples[kind]
  const instance = beforeRequestLine === true ? undefined : examplePath
  return problemBody(kind, { detail, instance, requestId: EXAMPLE_REQUEST_ID, upstreamCode })
}

/**
 * The OpenAPI response entry for one HTTP status: its schema names exactly the problem types that
 * status can carry, so generated clients can switch on `type`, with an example of each.
 */
export function problemResponse (status: number, { examplePath, routeHeaders = [] }: ProblemResponseOptions) {
  const kinds = problemKindsWithStatus(status)
  const types = kinds.map((kind) => Type.Literal(ProblemTypes[kind].type))
  const description = kinds.map((kind) => `[${ProblemTypes[kind].type}](${ProblemTypes[kind].type}): ${ProblemTypes[kind].title}`).join('; ')
  const typeOptions = { description: TYPE_DESCRIPTION }
  const fields = problemFields(types.length === 1 ? Type.Literal(ProblemTypes[kinds[0]!].type, typeOptions) : Type.Union(types, typeOptions))
  return {
    description,
    headers: headerSchemas(
      HttpHeaders.requestId,
      ...headersOfStatus(status),
      ...(ANSWERED_BEFORE_ROUTING.has(status) ? [] : routeHeaders)
    ),
    content: {
      [PROBLEM_CONTENT_TYPE]: {
        schema: Type.Object({
          ...fields,
          status: Type.Literal(status, { description: 'The HTTP status code of this answer.' }),
          // The HTTP parser's answers (a malformed request, 408, 431) come before any path was read.
          instance: Type.Optional(Type.String({ description: `${INSTANCE_DESCRIPTION} Absent when the request line could not be read.` })),
        }, { description: 'RFC 9457 problem details.' }),
        examples: Object.fromEntries(kinds.map((kind) =>
          [kind, { summary: ProblemTypes[kind].title, value: exampleOf(kind, examplePath) }])),
      },
    },
  }
}

/** The response entries of several statuses, keyed by status as a route schema's `response` wants them. */
export function problemResponses (statuses: readonly number[], options: ProblemResponseOptions) {
  return Object.fromEntries(statuses.map((status) => [status, problemResponse(status, options)]))
}
