import t from 'tap'
import { problemNameOf, problemPageHtml, problemPageOf, PROBLEM_PAGES_PATH } from '../../src/errors/problem-page.js'
import { ProblemTypes, type ProblemKind } from '../../src/errors/problem-types.js'

const kinds = Object.keys(ProblemTypes) as ProblemKind[]

t.test('every kind of the table has a name under /problems/ and says when it happens and what to do', async (t) => {
  const names = new Set<string>()
  for (const kind of kinds) {
    const { type } = ProblemTypes[kind]
    t.equal(`${PROBLEM_PAGES_PATH}${problemNameOf(kind)}`, type, `${kind}: the type URI is the page's path`)
    t.match(problemNameOf(kind), /^[a-z][a-z-]*[a-z]$/)
    names.add(problemNameOf(kind))
    const page = problemPageOf(kind)
    t.ok(page.whenItHappens.length > 20, `${kind}: when it happens`)
    t.ok(page.whatToDo.length > 10, `${kind}: what to do`)
  }
  t.equal(names.size, kinds.length, 'names are unique')
})

t.test('Retry-After is promised exactly for the kinds answered with it: 429 and 503', async (t) => {
  for (const kind of kinds) {
    const { status } = ProblemTypes[kind]
    t.equal(problemPageOf(kind).retryAfter, status === 429 || status === 503, `${kind} (${status})`)
  }
})

t.test('the HTML page escapes every value and carries no script or style', async (t) => {
  const html = problemPageHtml({
    type: '/problems/x"><script>alert(1)</script>',
    title: 'A <b>bold</b> & \'quoted\' title',
    status: 429,
    whenItHappens: '<img src=x onerror=alert(2)>',
    whatToDo: 'Wait "a while" & retry',
    retryAfter: true,
  })
  t.notMatch(html, /<script|<img|<b>|onerror=alert\(2\)>/)
  t.match(html, '<title>A &lt;b&gt;bold&lt;/b&gt; &amp; &#39;quoted&#39; title · nxcloud-bff</title>')
  t.match(html, '<code>/problems/x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</code>')
  t.match(html, 'Wait &quot;a while&quot; &amp; retry')
  t.match(html, 'HTTP 429 Too Many Requests')
  t.match(html, '<code>Retry-After</code>')
  t.notMatch(html, /style|<link/i)
  t.notMatch(problemPageHtml(problemPageOf('invalidRequest')), 'Retry-After', 'no Retry-After line where it does not apply')
})
