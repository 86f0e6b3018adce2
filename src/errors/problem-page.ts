import { STATUS_CODES } from 'node:http'
import Type, { type Static } from 'typebox'
import { problemTypeOf, ProblemTypes, type ProblemKind } from './problem-types.js'

/** Where the problem types are explained: a type URI is this path and the type's name. */
export const PROBLEM_PAGES_PATH = '/problems/'

/** What a problem type's page says, as JSON. */
export const ProblemPageSchema = Type.Object({
  type: Type.String({ description: 'The problem type URI, as problem answers carry it in `type`.' }),
  title: Type.String({ description: 'The title every answer of this type carries.' }),
  status: Type.Integer({ description: 'The HTTP status of answers of this type.' }),
  whenItHappens: Type.String({ description: 'What makes the service answer with this type.' }),
  whatToDo: Type.String({ description: 'What a caller should do about it.' }),
  retryAfter: Type.Boolean({ description: 'Whether answers of this type carry Retry-After: the seconds to wait before calling again.' }),
}, { description: 'A problem type of this service, explained.' })

export type ProblemPage = Static<typeof ProblemPageSchema>

/** A type's name: the last segment of its URI (`rate-limited` for `/problems/rate-limited`). */
export function problemNameOf (kind: ProblemKind): string {
  return ProblemTypes[kind].type.slice(PROBLEM_PAGES_PATH.length)
}

export function problemPageOf (kind: ProblemKind): ProblemPage {
  const { type, title, status, whenItHappens, whatToDo, retryAfter } = problemTypeOf(kind)
  return { type, title, status, whenItHappens, whatToDo, retryAfter: retryAfter === true }
}

// No script, no style, no frame, no form: the page is text and two links.
export const PROBLEM_PAGE_CONTENT_SECURITY_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character] ?? character)
}

/** The page as a browser shows it: every value escaped, no inline script or style (see the CSP above). */
export function problemPageHtml (page: ProblemPage): string {
  const text = (value: string | number) => escapeHtml(String(value))
  const retryAfter = page.retryAfter
    ? '<p>The answer carries <code>Retry-After</code>: the seconds to wait before calling again.</p>\n'
    : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${text(page.title)} · nxcloud-bff</title>
</head>
<body>
<main>
<h1>${text(page.title)}</h1>
<p>Problem type <code>${text(page.type)}</code>, answered with HTTP ${text(page.status)} ${text(STATUS_CODES[page.status] ?? '')}.</p>
<h2>When it happens</h2>
<p>${text(page.whenItHappens)}</p>
<h2>What to do</h2>
<p>${text(page.whatToDo)}</p>
${retryAfter}<p>Each answer of this type is an RFC 9457 problem (<code>application/problem+json</code>) whose <code>detail</code> says what happened that time; quote its <code>requestId</code> when you report it.</p>
<p><a href="/docs">The API documentation</a> · <a href="/openapi.json">the OpenAPI contract</a></p>
</main>
</body>
</html>
`
}
