import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { eventually } from '../support/eventually.js'
import { parseLogLines, type LogLine } from '../support/log-lines.js'

// The real entry point, as a container starts it: its own process, its own sockets, real signals.

const SERVER_ENTRY = fileURLToPath(new URL('../../src/server.ts', import.meta.url))
// Resolved from here: the server runs in a directory of its own, where `--import tsx` would not resolve.
const TSX_LOADER = import.meta.resolve('tsx')
// A healthy start takes 2–4 s (tsx compiles on the fly); the rest is room for a machine busy with other tests.
export const STARTUP_DEADLINE_MS = 20_000
// A guard against a hang: a start that fails, or a drain and close, take far less on a busy machine too.
const EXIT_DEADLINE_MS = 30_000

/** What the helpers need of a tap test (or of a script that cleans up after itself): somewhere to put the cleanup. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

export type ServerProcess = ChildProcessByStdio<null, Readable, Readable>

export interface RunningServer {
  child: ServerProcess
  /** Everything the process wrote so far. */
  output: { stdout: string, stderr: string }
  origin: string
}

/** `eventually()` under its former name and argument order, for the callers that still use it (test/logging/). */
export async function waitFor (what: string, deadlineMs: number, condition: () => Promise<boolean> | boolean): Promise<void> {
  await eventually(condition, { what, timeoutMs: deadlineMs })
}

export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * Spawns `src/server.ts` with nothing inherited but PATH, in `cwd` (by default an empty directory, so
 * that no developer's `.env` reaches a test); killed in teardown should it still run.
 */
export function spawnServer (t: Teardown, env: Record<string, string>, cwd = emptyDirectory(t)): Omit<RunningServer, 'origin'> {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, SERVER_ENTRY], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const output = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk: Buffer) => { output.stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { output.stderr += chunk.toString('utf8') })
  return { child, output }
}

function emptyDirectory (t: Teardown): string {
  const directory = mkdtempSync(join(tmpdir(), 'nxcloud-bff-server-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  return directory
}

/** A server against the simulator on a free loopback port, answering /healthz; `env` overrides any variable. */
export async function startServerProcess (t: Teardown, simulator: NxCloudSimulator, env: Record<string, string> = {}): Promise<RunningServer> {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const { child, output } = spawnServer(t, {
    PORT: String(port),
    HOST: '127.0.0.1',
    NXCLOUD_BASE_URL: simulator.url,
    NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
    NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
    NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
    AUTH_DISABLED: 'true',
    LOG_LEVEL: 'info',
    // Several servers run at once in the tests: none may claim the default metrics port.
    METRICS_PORT: '0',
    ...env,
  })
  await listeningAt(origin, { child, output })
  return { child, output, origin }
}

/** Resolves once the spawned server answers /healthz at `origin`; fails at once should it exit first. */
export async function listeningAt (origin: string, { child, output }: Omit<RunningServer, 'origin'>, what = 'the server to listen'): Promise<void> {
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`the server exited early: ${output.stderr}`)
    return await answersHealthz(origin)
  }, { what, timeoutMs: STARTUP_DEADLINE_MS })
}

export async function exitOf (child: ChildProcess): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the server did not exit in time')), EXIT_DEADLINE_MS)
    child.once('close', (code, signal) => {
      clearTimeout(deadline)
      resolve({ code, signal })
    })
  })
}

export async function answersHealthz (origin: string): Promise<boolean> {
  try {
    const response = await request(`${origin}/healthz`)
    await response.body.dump()
    return response.statusCode === 200
  } catch {
    return false
  }
}

/** The JSON lines a server wrote to stdout: `parseLogLines(output)` under its former name, for the callers that still use it. */
export function logLinesOf (output: RunningServer['output']): LogLine[] {
  return parseLogLines(output)
}
