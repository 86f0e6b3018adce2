/**
 * The hit rows' fixed-rate generator: open-loop.c (why C: its header), compiled once per process with the
 * machine's C compiler into a directory of its own, and run as a child process, which inherits the bench
 * process's cores. Requests go to a loopback origin, as every bench server listens.
 */
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { findOnPath } from '../support/executables.js'
import { percentile, type LatencyResult } from './http-load.js'

export interface OpenLoopLoad {
  ratePerSecond: number
  seconds: number
  /** Keep-alive connections, opened before the clock starts: enough that the server is what requests wait for. */
  connections: number
  /** The one request sent every time (a GET). */
  path: string
  headers: Record<string, string>
}

interface OpenLoopOutput {
  answered: number
  non2xx: number
  errors: number
  sendingSeconds: number
  latencyMicros: number[]
  lagMicros: number[]
}

const SOURCE = fileURLToPath(new URL('./open-loop.c', import.meta.url))
const MICROS_PER_MILLI = 1000

let built: Promise<string> | undefined

/**
 * Offers `load` to the server at `origin` (http://127.0.0.1:<port>): requests arriving as a Poisson process
 * of the rate, each sent when due whatever the earlier ones are doing, and timed from its due time to the
 * last byte of its answer.
 */
export async function offerFixedRateFromC (origin: string, load: OpenLoopLoad): Promise<LatencyResult> {
  const url = new URL(origin)
  if (url.hostname !== '127.0.0.1' || url.port === '') throw new Error(`the open loop asks 127.0.0.1:<port> only, not ${origin}`)
  const binary = await (built ??= buildOpenLoop())
  const child = spawn(binary, [url.port, String(load.ratePerSecond), String(load.seconds), String(load.connections)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
  child.stdin.end(requestHead(url.host, load))
  const [code] = await once(child, 'close') as [number | null]
  if (code !== 0) throw new Error(`the open loop failed (exit ${String(code)}): ${Buffer.concat(stderr).toString().trim()}`)
  return latencyResultOf(JSON.parse(Buffer.concat(stdout).toString()) as OpenLoopOutput)
}

function requestHead (host: string, load: OpenLoopLoad): string {
  const fields = Object.entries({ host, ...load.headers }).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `GET ${load.path} HTTP/1.1\r\n${fields}\r\n`
}

function latencyResultOf (output: OpenLoopOutput): LatencyResult {
  const sent = output.lagMicros.length
  const millis = (micros: number[]) => Float64Array.from(micros, (value) => value / MICROS_PER_MILLI).sort()
  const latencies = millis(output.latencyMicros)
  return {
    answered: output.answered,
    non2xx: output.non2xx,
    errors: output.errors,
    offeredPerSecond: sent / Math.max(output.sendingSeconds, Number.EPSILON),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    dispatchLagP99Ms: percentile(millis(output.lagMicros), 0.99),
  }
}

async function buildOpenLoop (): Promise<string> {
  const compiler = findOnPath('cc') ?? findOnPath('gcc')
  if (compiler === undefined) throw new Error('the fixed-rate generator (test/bench/open-loop.c) needs a C compiler: install gcc')
  const directory = mkdtempSync(join(tmpdir(), 'nxcloud-bff-open-loop-'))
  process.once('exit', () => { rmSync(directory, { recursive: true, force: true }) })
  const binary = join(directory, 'open-loop')
  await promisify(execFile)(compiler, ['-O2', '-Wall', '-o', binary, SOURCE, '-lm'])
  return binary
}
