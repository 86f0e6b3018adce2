import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { HitRows, Targets } from './bench-verdicts.js'

// A smoke run: it must finish and report every row and every target. Its figures are not asserted:
// they come from one short round on a shared machine, and speed is never a timed assertion.

// About 40 s on a quiet machine (build, seven processes, one short round, a 2,000-tenant fill); much more
// while other test files load both cores.
const SMOKE_RUN_DEADLINE_MS = 240_000
t.setTimeout(SMOKE_RUN_DEADLINE_MS + 10_000)

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

t.test('npm run bench -- --quick reports every row and a verdict on every target', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-bench-smoke-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const jsonFile = join(dir, 'bench.json')
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/bench/run-bench.ts', '--quick', '--json', jsonFile], {
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'] ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // SIGTERM, not SIGKILL: the bench stops its servers on the way out.
  const deadline = setTimeout(() => child.kill('SIGTERM'), SMOKE_RUN_DEADLINE_MS)
  t.teardown(() => { clearTimeout(deadline); child.kill('SIGTERM') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const [code] = await once(child, 'close') as [number | null]
  t.equal(code, 0, 'the bench finished, no row invalid')
  if (code !== 0) t.comment(`${stdout}\n${stderr}`)

  for (const row of Object.values(HitRows)) t.match(stdout, new RegExp(`^\\| ${escape(row)} +\\|`, 'm'), `hit table row: ${row}`)
  t.match(stdout, /^Redis \(the bench's own redis-server at redis:\/\/127\.0\.0\.1:\d+\): \d+ commands/m, 'Redis count, on its own Redis')
  t.match(stdout, /^\| upstream alone \(the simulator, asked directly\) +\|/m, 'miss table: the upstream alone')
  t.match(stdout, /^\| BFF miss +\|/m, 'miss table: the BFF')
  t.match(stdout, /^BFF p50 over the upstream's p50/m, 'miss overhead line')
  t.equal(stdout.match(/^\| (fresh|first pass|further pass) +\| \d+ +\| [\d.]+ +\|$/gm)?.length, 9, 'RSS: fresh, then 4 samples per pass')
  t.match(stdout, /^RSS at most [\d.]+ MB; from the end of the first pass on within [\d.]+ MB$/m, 'RSS summary')
  for (const target of Object.values(Targets)) {
    t.match(stdout, new RegExp(`^(PASS|MISS)  ${escape(target.label)}: \\S`, 'm'), `verdict: ${target.id}`)
  }

  const written = JSON.parse(readFileSync(jsonFile, 'utf8')) as {
    results: { hits: Array<{ target: string, cpuMicrosPerRequestByRound: number[] }>, miss: object, memory: { samples: unknown[] }, redisCommands: object }
    verdicts: Array<{ id: string, status: string }>
  }
  t.same(written.results.hits.map((row) => row.target), Object.values(HitRows), '--json: the hit rows')
  t.ok(written.results.hits.every((row) => row.cpuMicrosPerRequestByRound.length === 1), '--json: each row\'s CPU of its one round')
  t.equal(written.results.memory.samples.length, 9, '--json: the RSS samples')
  t.ok(written.results.redisCommands, '--json: the Redis count')
  t.same(written.verdicts.map((verdict) => verdict.id), Object.values(Targets).map((target) => target.id), '--json: the verdicts')
})
