/**
 * `npx tsx test/bench/log-chunk-sizes.ts [pipe]`: what one access line costs through pino's destination
 * (SonicBoom, synchronous) at each chunk size (`minLength`), written to /dev/null or, with `pipe`, to a
 * pipe read by `cat`, as stdout is in a container. SonicBoom measures the chunk pending in memory on
 * every line (`Buffer.byteLength` of it, flattened), so a line costs more the larger the chunk, while a
 * smaller chunk means more system calls: this prints the figures src/logging/log-destination.ts chose by.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'

const CHUNK_SIZES = [0, 512, 1024, 2048, 4096, 8192]
const LINES_PER_RUN = 300_000
const RUNS = 5

// A named pipe, so that the writing end blocks like a container's stdout (the pipes spawn() makes are
// non-blocking, and SonicBoom would sleep on EAGAIN instead of writing).
function fdOfDestination (): number {
  if (process.argv[2] !== 'pipe') return openSync('/dev/null', 'w')
  const dir = mkdtempSync(join(tmpdir(), 'log-chunk-sizes-'))
  process.on('exit', () => { rmSync(dir, { recursive: true, force: true }) })
  const fifo = join(dir, 'lines')
  execFileSync('mkfifo', [fifo])
  spawn('cat', [fifo], { stdio: ['ignore', 'ignore', 'inherit'] }).unref()
  return openSync(fifo, 'w')
}

// The service's access line: the same fields, a request id bound by a child logger, as Fastify makes it.
function accessLineWriter (fd: number, minLength: number): (index: number) => void {
  const log = pino({ level: 'info' }, pino.destination({ dest: fd, sync: true, minLength })).child({ requestId: 'Xk2Q7m9bT1c-1a2b' })
  return (index) => {
    log.info({
      method: 'GET',
      url: '/tenants/demo-shop/phones',
      statusCode: 200,
      responseTimeMs: Math.round((0.12 + (index % 8) * 0.01) * 100) / 100,
      cache: 'HIT',
      callerId: 'key:demo-all-tenants',
    }, 'request completed')
  }
}

function cpuNanosPerLine (write: (index: number) => void): number {
  const before = process.cpuUsage()
  for (let index = 0; index < LINES_PER_RUN; index++) write(index)
  const { user, system } = process.cpuUsage(before)
  return (user + system) * 1000 / LINES_PER_RUN
}

const fd = fdOfDestination()
process.stdout.write(`destination: ${process.argv[2] === 'pipe' ? 'a pipe read by cat' : '/dev/null'}; CPU ns per line, median of ${RUNS} runs of ${LINES_PER_RUN}\n`)
for (const minLength of CHUNK_SIZES) {
  const write = accessLineWriter(fd, minLength)
  const runs = Array.from({ length: RUNS }, () => cpuNanosPerLine(write)).sort((a, b) => a - b)
  const median = runs[Math.floor(RUNS / 2)] ?? 0
  process.stdout.write(`minLength ${String(minLength).padStart(5)}: ${median.toFixed(0).padStart(5)} ns\n`)
}
process.exit(0)
