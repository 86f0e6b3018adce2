import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { OPENAPI_FILE } from './openapi-document.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const REDOCLY = join(ROOT, 'node_modules', '.bin', 'redocly')
const REDOCLY_CONFIG = join(ROOT, 'openapi', 'redocly.yaml')
// Offline and quiet, as `npm run lint:openapi` runs it (redocly.yaml also turns telemetry off).
const REDOCLY_ENV = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }
// Loading the CLI and its rules takes a few seconds; on a busy machine, several.
const LINT_TIMEOUT_MS = 45_000

interface LintReport {
  totals: { errors: number, warnings: number, ignored: number }
  problems: Array<{ ruleId: string, message: string }>
}

/** Lints with openapi/redocly.yaml (recommended ruleset); the committed document when no file is given. */
function redoclyLint (file?: string): Promise<LintReport> {
  const args = ['lint', '--format=json', `--config=${REDOCLY_CONFIG}`, ...(file === undefined ? [] : [file])]
  return new Promise((resolve, reject) => {
    execFile(REDOCLY, args, { cwd: ROOT, env: REDOCLY_ENV, timeout: LINT_TIMEOUT_MS }, (error, stdout, stderr) => {
      // It exits non-zero when it reports errors: the report on stdout is what the tests read.
      const start = stdout.indexOf('{')
      if (start === -1) return reject(new Error(`redocly printed no report (${error?.message ?? 'no error'}): ${stderr}`))
      resolve(JSON.parse(stdout.slice(start)) as LintReport)
    })
  })
}

t.test('Redocly CLI (recommended ruleset) finds no error and no warning in the committed contract', async (t) => {
  const report = await redoclyLint()
  t.same(report.problems.map(({ ruleId, message }) => `${ruleId}: ${message}`), [])
  t.same(report.totals, { errors: 0, warnings: 0, ignored: 0 })
})

t.test('the lint does catch a contract that breaks the ruleset', async (t) => {
  const document = JSON.parse(await readFile(OPENAPI_FILE, 'utf8')) as {
    paths: Record<string, Record<string, { operationId?: string }>>
  }
  const operation = document.paths['/tenants/{appkey}/phones']?.['get']
  if (operation === undefined) return t.fail('the phone list operation is missing')
  delete operation.operationId
  const dir = await mkdtemp(join(tmpdir(), 'nxcloud-bff-openapi-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const broken = join(dir, 'openapi.json')
  await writeFile(broken, JSON.stringify(document))
  const report = await redoclyLint(broken)
  t.ok(report.problems.some(({ ruleId }) => ruleId === 'operation-operationId'), 'a missing operationId is reported')
})
