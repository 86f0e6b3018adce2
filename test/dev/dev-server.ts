/**
 * `npm run dev`: the NxCloud simulator, a dev identity provider and the BFF in one process, with the
 * simulator's demo credentials, the demo API keys and the in-process cache, so a new user can curl a
 * demo tenant at once. `tsx watch` restarts it on every source change; on a terminal its log lines are
 * pretty-printed. A `.env` is read as `npm start` reads it, less the NxCloud settings.
 */
import closeWithGrace from 'close-with-grace'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pretty from 'pino-pretty'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { loadEnvFile } from '../../src/env-file.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, DEMO_TENANTS } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { DEMO_API_KEY_ALL_TENANTS, DEMO_API_KEY_ENTRIES } from './demo-credentials.js'
import { DEV_AUDIENCE, DEV_ISSUER, startDevJwksServer } from './dev-identity-provider.js'

loadEnvFile('.env', process.env)
const SIMULATOR_PORT = Number(process.env['NXCLOUD_SIMULATOR_PORT'] ?? 4010)
const DEV_JWKS_PORT = Number(process.env['DEV_JWKS_PORT'] ?? 4011)

const simulator = await startNxCloudSimulator({
  accessKey: DEMO_ACCESS_KEY,
  accessSecret: DEMO_ACCESS_SECRET,
  port: SIMULATOR_PORT,
})
const jwks = await startDevJwksServer(DEV_JWKS_PORT)
const keysDir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-dev-'))
const apiKeysFile = join(keysDir, 'api-keys.json')
writeFileSync(apiKeysFile, JSON.stringify(DEMO_API_KEY_ENTRIES, null, 2))

// The upstream is always the simulator; access and everything else can be overridden from the environment.
// An empty variable (`API_KEYS_FILE=` as .env.example has it) means unset: it keeps the dev default.
const config = loadConfig({
  API_KEYS_FILE: apiKeysFile,
  JWT_JWKS_URL: jwks.url,
  JWT_ISSUER: DEV_ISSUER,
  JWT_AUDIENCE: DEV_AUDIENCE,
  ...Object.fromEntries(Object.entries(process.env).filter(([, value]) => value !== '')),
  NXCLOUD_BASE_URL: simulator.url,
  NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
  NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
  NXCLOUD_ACCESS_SECRET_FILE: undefined,
  NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
})
const app = await buildApp(config, process.stdout.isTTY ? { logStream: pretty({ translateTime: 'SYS:HH:MM:ss.l' }) } : {})

closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS }, async () => {
  await app.close()
  await simulator.close()
  await jwks.close()
  rmSync(keysDir, { recursive: true, force: true })
})

await app.listen({ port: config.PORT, host: config.HOST })
const base = `http://localhost:${config.PORT}`
app.log.info(`NxCloud simulator at ${simulator.url}; demo tenants: ${Object.keys(DEMO_TENANTS).join(', ')}`)
app.log.info(`try: curl -i -H 'X-API-Key: ${DEMO_API_KEY_ALL_TENANTS}' ${base}/tenants/demo-shop/phones   (contract: ${base}/openapi.json)`)
app.log.info(`or with a token: curl -i -H "Authorization: Bearer $(npm run -s dev:token)" ${base}/tenants/demo-shop/phones`)
