import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { exitOf, freePort, listeningAt, spawnServer, STARTUP_DEADLINE_MS } from '../server/server-process.js'
import { eventually } from '../support/eventually.js'

// The README's "against the simulator" steps: `npm run simulator`, its lines in .env, `npm start`, curl.

const SIMULATOR_SCRIPT = fileURLToPath(new URL('./run-simulator.ts', import.meta.url))
const PRINTED_ENV_LINE = /^[A-Z_]+=.*$/gm
const PRINTED_API_KEY = /X-API-Key: (\S+)'/

t.test('a server configured with the lines `npm run simulator` prints serves its demo tenants', async (t) => {
  const simulatorPort = await freePort()
  const simulator = spawn(process.execPath, ['--import', 'tsx', SIMULATOR_SCRIPT], {
    env: { PATH: process.env['PATH'] ?? '', NXCLOUD_SIMULATOR_PORT: String(simulatorPort) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { if (simulator.exitCode === null && simulator.signalCode === null) simulator.kill('SIGKILL') })
  let printed = ''
  simulator.stdout.on('data', (chunk: Buffer) => { printed += chunk.toString('utf8') })
  await eventually(() => PRINTED_API_KEY.test(printed), { what: 'the simulator to print its instructions', timeoutMs: STARTUP_DEADLINE_MS })

  const envLines = printed.match(PRINTED_ENV_LINE) ?? []
  t.match(envLines, [`NXCLOUD_BASE_URL=http://127.0.0.1:${simulatorPort}`], 'it names its own URL')
  const serverPort = await freePort()
  const cwd = mkdtempSync(join(tmpdir(), 'nxcloud-bff-simulator-env-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  writeFileSync(join(cwd, '.env'), [`PORT=${serverPort}`, 'HOST=127.0.0.1', ...envLines, ''].join('\n'))
  const { child: server, output } = spawnServer(t, {}, cwd)
  const origin = `http://127.0.0.1:${serverPort}`
  await listeningAt(origin, { child: server, output })

  const apiKey = PRINTED_API_KEY.exec(printed)?.[1] ?? ''
  const response = await request(`${origin}/tenants/demo-shop/phones`, { headers: { 'x-api-key': apiKey } })
  const body = await response.body.json() as { phones: unknown[] }
  t.equal(response.statusCode, 200)
  t.equal(body.phones.length, 2)
  const refused = await request(`${origin}/tenants/demo-shop/phones`)
  await refused.body.dump()
  t.equal(refused.statusCode, 401, 'the printed key file is the only way in')

  server.kill('SIGINT')
  simulator.kill('SIGINT')
  t.same(await exitOf(server), { code: 0, signal: null })
  t.same(await exitOf(simulator), { code: 0, signal: null })
})
