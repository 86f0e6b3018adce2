import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { request } from 'undici'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'

// The real entry point, as a container starts it: its own process, its own sockets, real signals.

const SERVER_ENTRY = fileURLToPath(new URL('../../src/server.ts', import.meta.url))
// Resolved from here: the server runs in a directory of its own, where `--import tsx` would not resolve.
const TSX_LOADER = import.meta.resolve('tsx')
const POLL_INTERVAL_MS = 25
// A healthy start takes 2–4 s (tsx compiles on the fly); the rest is room for a machine busy with other tests.
export const STARTUP_DEADLINE_MS = 20_000
const EXIT_DEADLINE_MS = 10_000

export type ServerProcess = ChildProcessByStdio<null, Readable, Readable>

export interface RunningServer {
  child: ServerProcess
  /** Everything the process wrote so far. */
  output: { stdout: string, stderr: string }
  origin: string
}

export async function waitFor (what: string, deadlineMs: number, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + deadlineMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(POLL_INTERVAL_MS)
  }
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
export function spawnServer (t: Test, env: Record<string, string>, cwd = emptyDirectory(t)): Omit<RunningServer, 'origin'> {
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

function emptyDirectory (t: Test): string {
  const directory = mkdtempSync(join(tmpdir(), 'nxcloud-bff-server-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  return directory
}

/** A server against the simulator on a free loopback port, answering /healthz; `env` overrides any variable. */
export async function startServerProcess (t: Test, simulator: NxCloudSimulator, env: Record<string, string> = {}): Promise<RunningServer> {
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
  await waitFor('the server to listen', STARTUP_DEADLINE_MS, async () => {
    if (child.exitCode !== null) throw new Error(`the server exited early: ${output.stderr}`)
    return await answersHealthz(origin)
  })
  return { child, output, origin }
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

/** The JSON lines a server wrote to stdout. */
export function logLinesOf (output: RunningServer['output']): Array<Record<string, unknown>> {
  return output.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>)
}
