/**
 * `npm run simulator`: the NxCloud simulator on its own, on a fixed port, to run the compiled server
 * (`npm run build && npm start`) against it. It prints the `.env` lines that point a server at it, and
 * writes a key file with the README's demo API keys, which a server accepts only with
 * NXCLOUD_ALLOW_DEMO_CREDENTIALS=true, as it does the simulator's demo credentials.
 */
import closeWithGrace from 'close-with-grace'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEMO_API_KEY_ALL_TENANTS, DEMO_API_KEY_ENTRIES } from '../dev/demo-credentials.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, DEMO_TENANTS } from './demo-tenants.js'
import { startNxCloudSimulator } from './nxcloud-simulator.js'

const HOST = process.env['NXCLOUD_SIMULATOR_HOST'] ?? '127.0.0.1'
const PORT = Number(process.env['NXCLOUD_SIMULATOR_PORT'] ?? 4010)
// In the git-ignored .dev/, next to the dev identity provider's key.
const DEMO_KEYS_FILE = fileURLToPath(new URL('../../.dev/demo-api-keys.json', import.meta.url))
const FAULT_APPKEYS = 'sim-code-<n>, sim-http-<status>, sim-bad-json, sim-bad-shape, sim-bad-record, sim-reset, sim-slow-<ms>'

const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET, host: HOST, port: PORT })
mkdirSync(dirname(DEMO_KEYS_FILE), { recursive: true })
writeFileSync(DEMO_KEYS_FILE, JSON.stringify(DEMO_API_KEY_ENTRIES, null, 2))
closeWithGrace(async () => { await simulator.close() })

process.stdout.write(`NxCloud simulator listening at ${simulator.url} (Ctrl-C stops it).
It accepts only the demo credentials. To run the compiled server against it, set these in .env
(appending them to a copy of .env.example works: the last line for a name wins), then
\`npm run build && npm start\`:

NXCLOUD_BASE_URL=${simulator.url}
NXCLOUD_ACCESS_KEY=${DEMO_ACCESS_KEY}
NXCLOUD_ACCESS_SECRET=${DEMO_ACCESS_SECRET}
NXCLOUD_ALLOW_DEMO_CREDENTIALS=true
API_KEYS_FILE=${DEMO_KEYS_FILE}

and call it with the demo key for every tenant:

curl -i -H 'X-API-Key: ${DEMO_API_KEY_ALL_TENANTS}' localhost:3000/tenants/demo-shop/phones

Demo tenants: ${Object.keys(DEMO_TENANTS).join(', ')}; fault appkeys: ${FAULT_APPKEYS}.
`)
