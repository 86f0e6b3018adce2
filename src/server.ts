import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'

// Placeholder credentials from .env.example must never reach NxCloud from a production start.
const PLACEHOLDER_CREDENTIAL = /^(change-?me|demo-|example|your-)/i

async function main (): Promise<void> {
  const config = loadConfig(process.env)
  if (PLACEHOLDER_CREDENTIAL.test(config.NXCLOUD_ACCESS_KEY) || PLACEHOLDER_CREDENTIAL.test(config.NXCLOUD_ACCESS_SECRET)) {
    if (process.env['NXCLOUD_ALLOW_DEMO_CREDENTIALS'] !== 'true') {
      throw new ConfigError(['NXCLOUD_ACCESS_KEY / NXCLOUD_ACCESS_SECRET hold placeholder or demo values; set the real integrator credentials'])
    }
  }
  const app = await buildApp(config)

  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an unhandled error')
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
  })

  await app.listen({ port: config.PORT, host: config.HOST })
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`)
  } else {
    process.stderr.write(`nxcloud-bff failed to start: ${error instanceof Error ? error.stack : String(error)}\n`)
  }
  process.exit(1)
})
