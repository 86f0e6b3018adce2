/**
 * The series a PromQL expression reads: each vector selector's metric name and label matchers. Not a
 * parser: a scanner that knows what in PromQL is not a selector. It skips string literals, `[...]`
 * ranges and subqueries, numbers and durations, comments, keywords and operators, the label lists of
 * `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`, and any name followed by `(`
 * (a function or an aggregation); what is left is a metric name, with its `{...}` matchers if it has
 * some. Grafana's `$__rate_interval` and friends only ever appear inside `[...]`, which is skipped.
 */

export type MatchOperator = '=' | '!=' | '=~' | '!~'

export interface LabelMatcher {
  label: string
  operator: MatchOperator
  value: string
}

export interface Selector {
  metric: string
  matchers: LabelMatcher[]
}

const AGGREGATIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
])
const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'])
const KEYWORDS = new Set(['bool', 'offset', 'and', 'or', 'unless', 'atan2', 'inf', 'nan', ...LABEL_LIST_KEYWORDS, ...AGGREGATIONS])
const IDENTIFIER = /[a-zA-Z_:][a-zA-Z0-9_:]*/y
const LABEL_NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y
const OPERATOR = /=~|!~|!=|=/y
const NUMBER_OR_DURATION = /[0-9.][0-9a-zA-Z.]*/y

class Scanner {
  position = 0
  constructor (readonly text: string) {}

  get done (): boolean { return this.position >= this.text.length }
  get current (): string { return this.text[this.position] ?? '' }

  skipSpace (): void {
    while (!this.done && /\s/.test(this.current)) this.position++
  }

  /** The next non-space character, without moving. */
  peek (): string {
    const saved = this.position
    this.skipSpace()
    const next = this.current
    this.position = saved
    return next
  }

  read (pattern: RegExp): string | undefined {
    pattern.lastIndex = this.position
    const match = pattern.exec(this.text)
    if (match === null) return undefined
    this.position += match[0].length
    return match[0]
  }

  expect (pattern: RegExp, what: string): string {
    this.skipSpace()
    const token = this.read(pattern)
    if (token === undefined) throw new Error(`expected ${what} at ${this.position} in ${this.text}`)
    return token
  }

  /** A quoted string (", ' or `), its escapes resolved as PromQL (Go) resolves them. */
  readString (): string {
    this.skipSpace()
    const quote = this.current
    if (!['"', '\'', '`'].includes(quote)) throw new Error(`expected a string at ${this.position} in ${this.text}`)
    let value = ''
    this.position++
    while (!this.done && this.current !== quote) {
      if (this.current === '\\' && quote !== '`') {
        this.position++
        value += unescape(this.current)
      } else {
        value += this.current
      }
      this.position++
    }
    if (this.done) throw new Error(`unterminated string in ${this.text}`)
    this.position++
    return value
  }

  /** Skips from an opening bracket to its closing one, strings inside included. */
  skipBalanced (open: string, close: string): void {
    let depth = 0
    while (!this.done) {
      const character = this.current
      if (character === '"' || character === '\'' || character === '`') {
        this.readString()
        continue
      }
      this.position++
      if (character === open) depth++
      if (character === close && --depth === 0) return
    }
    throw new Error(`unbalanced ${open}${close} in ${this.text}`)
  }
}

function unescape (character: string): string {
  return { n: '\n', t: '\t', r: '\r' }[character] ?? character
}

function readMatchers (scanner: Scanner): LabelMatcher[] {
  const matchers: LabelMatcher[] = []
  scanner.position++ // {
  while (scanner.peek() !== '}') {
    const label = scanner.expect(LABEL_NAME, 'a label name')
    const operator = scanner.expect(OPERATOR, 'a matching operator') as MatchOperator
    matchers.push({ label, operator, value: scanner.readString() })
    scanner.skipSpace()
    if (scanner.current === ',') scanner.position++
  }
  scanner.skipSpace()
  scanner.position++ // }
  return matchers
}

/** Every vector selector of a PromQL expression, in order. */
export function selectorsOf (expression: string): Selector[] {
  const scanner = new Scanner(expression)
  const selectors: Selector[] = []
  while (!scanner.done) {
    const character = scanner.current
    if (/\s/.test(character)) {
      scanner.position++
    } else if (character === '"' || character === '\'' || character === '`') {
      scanner.readString()
    } else if (character === '[') {
      scanner.skipBalanced('[', ']')
    } else if (character === '#') {
      while (!scanner.done && scanner.current !== '\n') scanner.position++
    } else if (/[0-9.]/.test(character)) {
      scanner.read(NUMBER_OR_DURATION)
    } else if (character === '{') {
      const matchers = readMatchers(scanner)
      const name = matchers.find((matcher) => matcher.label === '__name__' && matcher.operator === '=')
      if (name === undefined) throw new Error(`a selector without a metric name in ${expression}`)
      selectors.push({ metric: name.value, matchers: matchers.filter((matcher) => matcher !== name) })
    } else if (/[a-zA-Z_:]/.test(character)) {
      const name = scanner.read(IDENTIFIER) as string
      const next = scanner.peek()
      if (LABEL_LIST_KEYWORDS.has(name.toLowerCase())) {
        scanner.skipSpace()
        if (scanner.current === '(') scanner.skipBalanced('(', ')')
      } else if (KEYWORDS.has(name.toLowerCase()) || next === '(') {
        // an operator, or a function or aggregation whose arguments are scanned as the loop goes on
      } else {
        scanner.skipSpace()
        selectors.push({ metric: name, matchers: next === '{' ? readMatchers(scanner) : [] })
      }
    } else {
      scanner.position++
    }
  }
  return selectors
}

/** Grafana's `label_values(selector, label)` variable query: the selector and the label it lists. */
export function labelValuesQueryOf (query: string): { selector: Selector, label: string } {
  const match = /^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(query)
  if (match === null) throw new Error(`not a label_values(selector, label) query: ${query}`)
  const [selector, ...more] = selectorsOf(match[1] as string)
  if (selector === undefined || more.length > 0) throw new Error(`label_values wants one selector: ${query}`)
  return { selector, label: match[2] as string }
}
