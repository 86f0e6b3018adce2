import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { startSimulator } from '../helper.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'
import type { NxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { waitForLogLine } from '../support/log-lines.js'
import { answersHealthz, exitOf, freePort, listeningAt, spawnServer, type RunningServer } from './server-process.js'

// `cp .env.example .env`, fill it in, `npm start`: the server reads `.env` from its working directory.

function directoryWith (t: Test, files: Record<string, string>): string {
  const directory = mkdtempSync(join(tmpdir(), 'nxcloud-bff-env-file-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text)
  return directory
}

function envFileFor (simulator: NxCloudSimulator, port: number): string {
  return [
    '# as copied from .env.example and filled in',
    `PORT=${port}`,
    'HOST=127.0.0.1',
    `NXCLOUD_BASE_URL=${simulator.url}`,
    `NXCLOUD_ACCESS_KEY=${DEMO_ACCESS_KEY}`,
    `NXCLOUD_ACCESS_SECRET="${DEMO_ACCESS_SECRET}"`,
    'NXCLOUD_ACCESS_SECRET_FILE=',
    'NXCLOUD_ALLOW_DEMO_CREDENTIALS=true',
    'AUTH_DISABLED=true',
    'REDIS_URL=',
    '',
  ].join('\n')
}

// Log lines are buffered for up to a second.
async function envFileLogLine (output: RunningServer['output']): Promise<Record<string, unknown>> {
  return await waitForLogLine(output, (line) => line['envFile'] !== undefined, 'the .env log line')
}

t.test('the server takes its whole configuration from a .env file in its working directory', async (t) => {
  const simulator = await startSimulator(t)
  const port = await freePort()
  const cwd = directoryWith(t, { '.env': envFileFor(simulator, port) })
  const { child, output } = spawnServer(t, {}, cwd)
  const origin = `http://127.0.0.1:${port}`
  await listeningAt(origin, { child, output }, 'the server to listen on the port from .env')

  const response = await request(`${origin}/tenants/demo-shop/phones`)
  const body = await response.body.json() as { phones: unknown[] }
  t.equal(response.statusCode, 200, 'NxCloud accepted the signature made with the secret from .env')
  t.equal(body.phones.length, 2)
  t.equal(simulator.calls, 1, 'the upstream from .env was called')
  t.match(await envFileLogLine(output), { envFile: { path: '.env', applied: 9, keptFromEnvironment: 0 } })
  t.notMatch(output.stdout, DEMO_ACCESS_SECRET, 'the secret read from the file is not logged')
  child.kill('SIGINT')
  t.same(await exitOf(child), { code: 0, signal: null })
})

t.test('a variable set in the environment wins over the same variable in .env', async (t) => {
  const simulator = await startSimulator(t)
  const [portInFile, portInEnvironment] = [await freePort(), await freePort()]
  const cwd = directoryWith(t, {
    '.env': `${envFileFor(simulator, portInFile)}NXCLOUD_ACCESS_SECRET_FILE=/nonexistent/secret\n`,
  })
  // The environment sets the secret file to empty (unset): the file's own line for it must not apply.
  const { child, output } = spawnServer(t, { PORT: String(portInEnvironment), NXCLOUD_ACCESS_SECRET_FILE: '' }, cwd)
  await listeningAt(`http://127.0.0.1:${portInEnvironment}`, { child, output }, 'the server to listen on the port from the environment')
  t.notOk(await answersHealthz(`http://127.0.0.1:${portInFile}`), 'nothing listens on the port from .env')
  t.match(await envFileLogLine(output), { envFile: { applied: 7, keptFromEnvironment: 2 } })
  child.kill('SIGINT')
  await exitOf(child)
})

t.test('without a .env file the environment alone is the configuration', async (t) => {
  const { child, output } = spawnServer(t, {}, directoryWith(t, {}))
  t.same(await exitOf(child), { code: 1, signal: null })
  t.match(output.stderr, /^Invalid configuration:\n.*NXCLOUD_ACCESS_KEY is required/s)
})

t.test('a .env that exists but cannot be read stops the start with one clear message', async (t) => {
  const cwd = directoryWith(t, {})
  mkdirSync(join(cwd, '.env'))
  const { child, output } = spawnServer(t, {}, cwd)
  t.same(await exitOf(child), { code: 1, signal: null })
  t.equal(output.stderr, 'Invalid configuration:\n  - .env exists but cannot be read (EISDIR)\n')
})
