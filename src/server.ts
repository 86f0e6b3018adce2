import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ApiKeyFileError } from './auth/api-keys.js'
import { ConfigError, loadConfig } from './config.js'

async function main (): Promise<void> {
  const config = loadConfig(process.env)
  const app = await buildApp(config)

  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an unhandled error')
    else app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
  })

  await app.listen({ port: config.PORT, host: config.HOST })
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof ApiKeyFileError) {
    process.stderr.write(`${error.message}\n`)
  } else {
    process.stderr.write(`nxcloud-bff failed to start: ${error instanceof Error ? error.stack : String(error)}\n`)
  }
  process.exit(1)
})
