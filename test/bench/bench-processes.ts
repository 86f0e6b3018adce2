/**
 * The servers the benchmark loads, each a child process of its own (the load generator stays in the bench
 * process), and what Linux says each one costs: CPU time from /proc/<pid>/stat, resident memory from
 * /proc/<pid>/status.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePort } from '../server/server-process.js'
import { eventually } from '../support/eventually.js'
import { findOnPath } from '../support/executables.js'
import { HIT_ANSWER_ENV, type HitAnswer } from './baseline-server.js'
import type { MemoryCgroup } from './memory-cgroup.js'
import { onBenchCpus, onServerCpu } from './cpu-pinning.js'

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
// Linux's USER_HZ, the unit of utime/stime in /proc/<pid>/stat, is 100 on every mainstream kernel.
const CLOCK_TICKS_PER_SECOND = 100
const MICROS_PER_TICK = 1e6 / CLOCK_TICKS_PER_SECOND
// utime and stime are fields 14 and 15 of /proc/<pid>/stat; counted after the `(comm)` field, which may hold spaces.
const UTIME_AFTER_COMM = 11
const STIME_AFTER_COMM = 12
const BYTES_PER_KIB = 1024
const STARTUP_DEADLINE_MS = 30_000

// Every child the bench spawned and has not stopped: none may outlive the bench, however it ends.
const running = new Set<ChildProcess>()
process.on('exit', () => { for (const child of running) child.kill('SIGTERM') })

export interface BenchServer {
  origin: string
  process: ChildProcess
}

/** The compiled BFF (`dist/server.js`) as production starts it: `env` holds everything it reads, nothing is inherited but PATH. */
export async function startBff (env: Record<string, string>, cgroup?: MemoryCgroup): Promise<BenchServer> {
  // The metrics listener runs, as in production, on a port of its own per server; the working directory
  // is not the project's, where a developer's .env would change what is measured.
  const withMetrics = { METRICS_PORT: String(await freePort()), ...env }
  return await startServer([join(REPO_ROOT, 'dist/server.js')], withMetrics, { path: '/healthz' }, tmpdir(), cgroup)
}

export const Baselines = {
  bare: 'test/bench/bare-fastify.ts',
  conventional: 'test/bench/conventional-fastify.ts',
  probe: 'test/bench/probe-fastify.ts',
} as const
export type Baseline = typeof Baselines[keyof typeof Baselines]

/**
 * A baseline process serving `answer` at the service's route; ready once `readyRequest` answers 200.
 * Like the BFF, it inherits nothing but PATH, and its stdout (where the conventional build logs) is /dev/null.
 */
export async function startBaseline (script: Baseline, answer: HitAnswer, env: Record<string, string>, readyRequest: ReadyRequest): Promise<BenchServer> {
  return await startServer(['--import', 'tsx', script], { ...env, [HIT_ANSWER_ENV]: JSON.stringify(answer) }, readyRequest)
}

/**
 * A Redis of the bench's own on a free port, without persistence, when `redis-server` is on the PATH (else
 * undefined): a shared Redis also counts its other clients' commands, which this one has none of.
 */
export async function startPrivateRedis (): Promise<BenchServer | undefined> {
  const executable = findOnPath('redis-server')
  if (executable === undefined) return undefined
  const port = await freePort()
  const started = onBenchCpus(executable, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
  const child = track(spawn(started.command, started.args, { stdio: 'ignore' }))
  const origin = `redis://127.0.0.1:${port}`
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode} before answering`)
    return await redisAnswers(origin)
  }, { what: 'the private redis-server to answer', timeoutMs: STARTUP_DEADLINE_MS })
  return { origin, process: child }
}

async function redisAnswers (url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await redis.ping() === 'PONG'
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

export interface ReadyRequest {
  path: string
  headers?: Record<string, string>
}

async function startServer (args: string[], env: Record<string, string>, ready: ReadyRequest, cwd = REPO_ROOT, cgroup?: MemoryCgroup): Promise<BenchServer> {
  const port = await freePort()
  const inCgroup = cgroup === undefined ? { command: process.execPath, args } : cgroup.wrap(process.execPath, args)
  const started = onServerCpu(inCgroup.command, inCgroup.args)
  const child = track(spawn(started.command, started.args, {
    cwd,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', ...env, PORT: String(port) },
  }))
  const origin = `http://127.0.0.1:${port}`
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode} before answering`)
    return await answersOk(origin, ready)
  }, { what: `${args.join(' ')} to answer`, timeoutMs: STARTUP_DEADLINE_MS })
  return { origin, process: child }
}

async function answersOk (origin: string, { path, headers }: ReadyRequest): Promise<boolean> {
  try {
    const response = await request(origin + path, { headers: headers ?? {} })
    await response.body.dump()
    return response.statusCode === 200
  } catch {
    return false
  }
}

function track (child: ChildProcess): ChildProcess {
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

export async function stopServer (server: BenchServer | undefined): Promise<void> {
  const child = server?.process
  if (child === undefined) return
  await stopChild(child)
}

/** Stops every server still running, whoever started it. */
export async function stopAllServers (): Promise<void> {
  await Promise.all([...running].map(stopChild))
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

/** User plus system CPU time the process has used so far, in microseconds. */
export function cpuMicrosOf (server: BenchServer): number {
  return cpuMicrosFromStat(readFileSync(`/proc/${pidOf(server)}/stat`, 'utf8'))
}

/** Resident set size now (VmRSS), in bytes. */
export function rssBytesOf (server: BenchServer): number {
  return rssBytesFromStatus(readFileSync(`/proc/${pidOf(server)}/status`, 'utf8'))
}

export function cpuMicrosFromStat (stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ')
  const ticks = Number(fields[UTIME_AFTER_COMM]) + Number(fields[STIME_AFTER_COMM])
  if (!Number.isFinite(ticks)) throw new Error(`unreadable /proc stat line: ${stat.slice(0, 80)}`)
  return ticks * MICROS_PER_TICK
}

export function rssBytesFromStatus (status: string): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
  if (kib === undefined) throw new Error('no VmRSS line in /proc status')
  return Number(kib) * BYTES_PER_KIB
}

function pidOf (server: BenchServer): number {
  const pid = server.process.pid
  if (pid === undefined || server.process.exitCode !== null) throw new Error(`the server at ${server.origin} is not running`)
  return pid
}
