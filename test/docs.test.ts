import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigSchema } from '../src/config.js'
import { ProblemTypes } from '../src/errors/problem-types.js'

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const ENV_EXAMPLE = readFileSync(new URL('../.env.example', import.meta.url), 'utf8')
const VARIABLES = Object.keys(ConfigSchema.properties)

function sectionOf (markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`)
  if (start === -1) throw new Error(`README has no section ${heading}`)
  const next = markdown.indexOf('\n## ', start + heading.length + 2)
  return markdown.slice(start, next === -1 ? undefined : next)
}

t.test('.env.example documents every variable the service reads', async (t) => {
  for (const name of VARIABLES) t.match(ENV_EXAMPLE, new RegExp(`^${name}=`, 'm'), `.env.example sets ${name}`)
})

t.test('the README configuration table names every variable the service reads', async (t) => {
  const table = sectionOf(README, '## Configuration')
  for (const name of VARIABLES) t.match(table, `\`${name}\``, `the table names ${name}`)
})

t.test('the README error table is the problem table: every type with its status, and no other', async (t) => {
  const rows = sectionOf(README, '### Errors').split('\n').filter((line) => line.includes('`/problems/'))
  const documented = rows.map((row) => {
    const cells = row.split('|').map((cell) => cell.trim())
    return `${cells[2]} ${cells[3]?.replaceAll('`', '')}`
  })
  const expected = Object.values(ProblemTypes).map(({ status, type }) => `${status} ${type}`)
  t.same([...new Set(documented)].sort(), [...expected].sort())
})
