/**
 * `npm run dev`: the NxCloud simulator and the BFF in one process, with the simulator's demo
 * credentials and the in-process cache, so a new user can curl a demo tenant at once.
 */
import closeWithGrace from 'close-with-grace'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, DEMO_TENANTS } from './simulator/demo-tenants.js'
import { startNxCloudSimulator } from './simulator/nxcloud-simulator.js'

const SIMULATOR_PORT = Number(process.env['NXCLOUD_SIMULATOR_PORT'] ?? 4010)

const simulator = await startNxCloudSimulator({
  accessKey: DEMO_ACCESS_KEY,
  accessSecret: DEMO_ACCESS_SECRET,
  port: SIMULATOR_PORT,
})
const config = loadConfig({
  ...process.env,
  NXCLOUD_BASE_URL: simulator.url,
  NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
  NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
})
const app = await buildApp(config)

closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS }, async () => {
  await app.close()
  await simulator.close()
})

await app.listen({ port: config.PORT, host: config.HOST })
const base = `http://localhost:${config.PORT}`
app.log.info(`NxCloud simulator at ${simulator.url}; demo tenants: ${Object.keys(DEMO_TENANTS).join(', ')}`)
app.log.info(`try: curl -i ${base}/tenants/demo-shop/phones   (contract: ${base}/openapi.json)`)
