import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import Value from 'typebox/value'
import { ConfigSchema } from '../../src/config.js'

// compose.yaml checked for the shape the README promises: two instances on one Redis, the secret and
// the key file as files, hardened containers, a stop grace period longer than the service's shutdown.

interface ComposeService {
  build?: string
  image?: string
  env_file?: string
  environment?: Record<string, string>
  secrets?: string[]
  ports?: string[]
  read_only?: boolean
  cap_drop?: string[]
  security_opt?: string[]
  stop_grace_period?: string
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  command?: string[]
  user?: string
}

interface ComposeFile {
  services: Record<string, ComposeService>
  secrets: Record<string, { file: string }>
}

const compose = parse(readFileSync(new URL('../../compose.yaml', import.meta.url), 'utf8'), { merge: true }) as ComposeFile
const instances = Object.entries(compose.services).filter(([, service]) => service.build !== undefined)
const variables = ConfigSchema.properties

function seconds (duration: string | undefined): number {
  const match = /^(\d+)s$/.exec(duration ?? '')
  if (match === null) throw new Error(`not a duration in seconds: ${String(duration)}`)
  return Number(match[1])
}

t.test('two instances of the image, each on its own loopback port', async (t) => {
  t.equal(instances.length, 2)
  t.same(new Set(instances.map(([, service]) => service.image)).size, 1, 'one image')
  const hostPorts = instances.flatMap(([, service]) => service.ports ?? [])
  t.equal(new Set(hostPorts).size, 2)
  for (const port of hostPorts) t.match(port, /^127\.0\.0\.1:\d+:3000$/, 'published on loopback only, to the PORT set')
})

t.test('both instances share the Redis of the file, started first', async (t) => {
  for (const [name, service] of instances) {
    const redisHost = new URL(service.environment?.['REDIS_URL'] ?? '').hostname
    const redis = compose.services[redisHost]
    t.ok(redis?.healthcheck, `${name}: REDIS_URL names the service ${redisHost}, which has a health check`)
    t.same(service.depends_on, { [redisHost]: { condition: 'service_healthy' } })
    t.match(redis?.command, ['redis-server', '--save', '', '--appendonly', 'no'], 'a cache: nothing persisted')
  }
})

t.test('the integrator secret and the API keys are files, named by the *_FILE variables', async (t) => {
  for (const [name, service] of instances) {
    t.equal(service.env_file, '.env', `${name} reads .env`)
    t.equal(service.environment?.['NXCLOUD_ACCESS_SECRET'], '', `${name}: a secret in .env cannot compete with the file`)
    for (const variable of ['NXCLOUD_ACCESS_SECRET_FILE', 'API_KEYS_FILE']) {
      const path = service.environment?.[variable] ?? ''
      const secret = /^\/run\/secrets\/(.+)$/.exec(path)?.[1] ?? ''
      t.ok(service.secrets?.includes(secret), `${name}: ${variable}=${path} is a mounted secret`)
      t.match(compose.secrets[secret], { file: /^\.\/secrets\// }, `${secret} comes from a file under secrets/`)
    }
    for (const variable of Object.keys(service.environment ?? {})) t.ok(variable in variables, `${variable} is in ConfigSchema`)
  }
})

t.test('hardened containers, given time for the drain and the close', async (t) => {
  const shutdownSeconds = (Number(Value.Default(variables.SHUTDOWN_DRAIN_DELAY_MS, undefined)) +
    Number(Value.Default(variables.SHUTDOWN_TIMEOUT_MS, undefined))) / 1000
  for (const [name, service] of Object.entries(compose.services)) {
    t.equal(service.read_only, true, `${name}: read-only root filesystem`)
    t.same(service.cap_drop, ['ALL'], `${name}: no capabilities`)
    t.same(service.security_opt, ['no-new-privileges:true'], `${name}: no privilege escalation`)
  }
  for (const [name, service] of instances) {
    t.ok(seconds(service.stop_grace_period) > shutdownSeconds, `${name}: stop_grace_period above ${shutdownSeconds} s`)
  }
})
