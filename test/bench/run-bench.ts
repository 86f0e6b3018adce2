/**
 * `npm run bench -- [--rounds N] [--duration S] [--tenants N] [--json FILE] [--quick]`: the targets of issue
 * 14 (item 8), against the compiled BFF with its production defaults (only the rate limit raised, so that
 * one load generator is not refused, and no drain delay on stop), side by side with baselines serving
 * its exact bytes and headers. Each server is a child process; the load generators run here.
 *
 * 1. Hit rows (hit-rows.ts): the bare Fastify route, the conventional build and issue 14's probe (the
 *    baselines), the BFF hit with an API key, without its access line, with a repeated JWT, in Redis mode.
 * 2. Miss row (miss-row.ts): every request a new tenant, the upstream answering after 20 ms.
 * 3. Memory row (memory-row.ts): RSS while a fresh BFF caches `--tenants` distinct tenants, and after.
 * Then one PASS/MISS line per target of the hit rows (bench-verdicts.ts); miss and memory are reported. The Redis is BENCH_REDIS_URL if set, else a
 * redis-server of the bench's own when one is on the PATH, else the tests' Redis at 127.0.0.1:6379.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { CONNECTIONS, progress, startFixture } from './bench-fixture.js'
import { BenchUsageError, parseBenchOptions, type BenchOptions } from './bench-options.js'
import { stopAllServers } from './bench-processes.js'
import { describePinning, pinBenchProcess } from './cpu-pinning.js'
import { renderReport, type RunDescription } from './bench-report.js'
import { FIXED_RATE_OF_BARE_SATURATION, judge, type BenchResults } from './bench-verdicts.js'
import { measureHits, TWIN_ROWS } from './hit-rows.js'
import { measureMemory } from './memory-row.js'
import { measureMiss } from './miss-row.js'

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
const USAGE = 'usage: npm run bench -- [--rounds N] [--duration S] [--tenants N] [--json FILE] [--quick]'
const EXIT_INVALID_RUN = 1
const EXIT_USAGE = 2
const EXIT_INTERRUPTED = 130

async function main (options: BenchOptions): Promise<void> {
  pinBenchProcess()
  const [loadAtStart = 0] = loadavg()
  const start = describeRun(options, loadAtStart)
  process.stdout.write(`${start.machine}\n${start.method}\n`)
  // `npm test` checks the types; the bench only needs the JavaScript, which is the same without the check.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--noCheck'], { cwd: REPO_ROOT, stdio: 'inherit' })
  progress('built dist/')
  const fixture = await startFixture()
  try {
    const hits = await measureHits(options, fixture)
    const miss = await measureMiss(options, fixture)
    const memory = await measureMemory(options, fixture)
    const results: BenchResults = {
      fixedRatePerSecond: hits.fixedRatePerSecond,
      hits: hits.hits,
      redisCommands: hits.redisCommands,
      miss: miss.row,
      memory,
    }
    const verdicts = judge(results)
    const run = describeRun(options, loadAtStart, loadavg()[0])
    process.stdout.write(`\n${renderReport(run, results, verdicts)}`)
    if (options.jsonFile !== undefined) {
      const rounds = { saturation: hits.saturation, fixedRate: hits.fixedRate, miss: miss.rounds }
      writeFileSync(options.jsonFile, `${JSON.stringify({ date: new Date().toISOString(), ...run, options, results, verdicts, rounds }, null, 2)}\n`)
    }
    flagInvalidRuns(results)
  } finally {
    await stopAllServers()
    await fixture.close()
  }
}

function describeRun (options: BenchOptions, loadAtStart: number, loadAtEnd?: number): RunDescription {
  const load = `load average ${loadAtStart.toFixed(2)} at the start${loadAtEnd === undefined ? '' : `, ${loadAtEnd.toFixed(2)} at the end`}`
  return {
    machine: `machine: ${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `Linux ${release()}, Node ${process.version}, ${load}`,
    method: `method: ${options.rounds} round(s) alternating between the rows, each round on freshly started servers, ${options.durationSeconds} s per run after ` +
      `${options.warmupSeconds} s of warm-up; the rows ${TWIN_ROWS.join(' and ')} on two processes each at saturation, their CPU over both; every row serves the service's hit body and header fields, asked with an API key ` +
      `(the JWT row with a bearer token); ${describePinning()}; saturation: autocannon, ${CONNECTIONS} connections; CPU: utime + stime of each server ` +
      `process from /proc/<pid>/stat over the requests it answered; fixed rate: open loop in C (test/bench/open-loop.c) at ${FIXED_RATE_OF_BARE_SATURATION} of ` +
      'the bare route\'s saturation, latency from each request\'s due time; servers\' stdout: /dev/null; figures are medians over rounds; efficiency and CPU ratios: the median over rounds of the two rows\' ratio in the same round',
  }
}

// A refused or failed request means a row measured something else than its path (a limiter, a shed, a crash).
function flagInvalidRuns (results: BenchResults): void {
  const failing = [
    ...results.hits.filter((row) => row.non2xx + row.errors > 0).map((row) => row.target),
    ...(results.miss.non2xx + results.miss.errors > 0 ? ['miss'] : []),
    ...(results.memory.non2xx + results.memory.errors > 0 ? ['memory'] : []),
  ]
  if (failing.length === 0) return
  process.exitCode = EXIT_INVALID_RUN
  process.stdout.write(`INVALID: non-2xx answers or errors in ${failing.join(', ')}: those figures do not measure the path they name\n`)
}

// Leaving through process.exit runs the 'exit' hook of bench-processes.ts, which stops every server.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(EXIT_INTERRUPTED))

let options: BenchOptions | undefined
try {
  options = parseBenchOptions(process.argv.slice(2))
} catch (error) {
  if (!(error instanceof BenchUsageError)) throw error
  process.stderr.write(`${error.message}\n${USAGE}\n`)
  process.exitCode = EXIT_USAGE
}
if (options !== undefined) await main(options)
