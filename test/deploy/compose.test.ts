import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import Value from 'typebox/value'
import { ConfigSchema, loadConfig } from '../../src/config.js'

// compose.yaml and compose.sentinel.yaml checked for the shape the README promises: two instances on
// one Redis (a server, or a Sentinel group), the secret and the key file as files, hardened containers,
// a stop grace period longer than the service's shutdown.

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
  tmpfs?: string[]
}

interface ComposeFile {
  services: Record<string, ComposeService>
  secrets: Record<string, { file: string }>
}

const variables = ConfigSchema.properties

function composeFile (name: string): ComposeFile {
  return parse(readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8'), { merge: true }) as ComposeFile
}

function instancesOf (compose: ComposeFile): Array<[string, ComposeService]> {
  return Object.entries(compose.services).filter(([, service]) => service.build !== undefined)
}

const plainCompose = composeFile('compose.yaml')
const sentinelCompose = composeFile('compose.sentinel.yaml')

function seconds (duration: string | undefined): number {
  const match = /^(\d+)s$/.exec(duration ?? '')
  if (match === null) throw new Error(`not a duration in seconds: ${String(duration)}`)
  return Number(match[1])
}

t.test('compose.yaml: both instances share the Redis of the file, started first', async (t) => {
  for (const [name, service] of instancesOf(plainCompose)) {
    const redisHost = new URL(service.environment?.['REDIS_URL'] ?? '').hostname
    const redis = plainCompose.services[redisHost]
    t.ok(redis?.healthcheck, `${name}: REDIS_URL names the service ${redisHost}, which has a health check`)
    t.same(service.depends_on, { [redisHost]: { condition: 'service_healthy' } })
    t.match(redis?.command, ['redis-server', '--save', '', '--appendonly', 'no'], 'a cache: nothing persisted')
  }
})

for (const [file, compose] of [['compose.yaml', plainCompose], ['compose.sentinel.yaml', sentinelCompose]] as const) {
  const instances = instancesOf(compose)

  t.test(`${file}: two instances of the image, each on its own loopback port`, async (t) => {
    t.equal(instances.length, 2)
    t.same(new Set(instances.map(([, service]) => service.image)).size, 1, 'one image')
    const hostPorts = instances.flatMap(([, service]) => service.ports ?? [])
    t.equal(new Set(hostPorts).size, 2)
    for (const port of hostPorts) t.match(port, /^127\.0\.0\.1:\d+:3000$/, 'published on loopback only, to the PORT set')
  })

  t.test(`${file}: the integrator secret and the API keys are files, named by the *_FILE variables`, async (t) => {
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

  t.test(`${file}: hardened containers, given time for the drain and the close`, async (t) => {
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
}

t.test('compose.sentinel.yaml: both instances find the master through the three Sentinels of the file, started first', async (t) => {
  const sentinelNames = Object.keys(sentinelCompose.services).filter((name) => name.startsWith('sentinel-'))
  t.equal(sentinelNames.length, 3, 'three Sentinels: a quorum of two survives one lost')
  for (const [name, service] of instancesOf(sentinelCompose)) {
    const environment = service.environment ?? {}
    t.equal(environment['REDIS_URL'], '', `${name}: a REDIS_URL in .env cannot make a second topology`)
    const hosts = (environment['REDIS_SENTINELS'] ?? '').split(',').map((entry) => entry.split(':')[0])
    t.same(hosts.sort(), sentinelNames.sort(), `${name}: REDIS_SENTINELS names the Sentinels of the file`)
    t.same(Object.keys(service.depends_on ?? {}).sort(), sentinelNames.sort())
    const config = loadConfig({ ...environment, NXCLOUD_ACCESS_KEY: 'live-access-key', NXCLOUD_ACCESS_SECRET_FILE: undefined, NXCLOUD_ACCESS_SECRET: 'live-secret', API_KEYS_FILE: '/keys.json' })
    t.equal(config.REDIS_SENTINELS?.length, 3, `${name}: the configuration is valid, with one topology`)
    for (const sentinel of sentinelNames) {
      const script = (sentinelCompose.services[sentinel]?.command ?? []).join(' ')
      const monitor = /sentinel monitor (\S+) (\S+) (\d+) (\d+)/.exec(script)
      t.equal(monitor?.[1], environment['REDIS_SENTINEL_NAME'], `${sentinel} watches the master the instances name`)
      t.ok(sentinelCompose.services[monitor?.[2] ?? '']?.healthcheck, `${sentinel} watches ${monitor?.[2]}, a service with a health check`)
      t.match(script, /--sentinel/)
      t.ok(sentinelCompose.services[sentinel]?.healthcheck, `${sentinel} has a health check`)
      t.ok(sentinelCompose.services[sentinel]?.tmpfs?.some((mount) => mount.startsWith('/data')), `${sentinel} rewrites its configuration in a tmpfs`)
    }
  }
  const replica = (sentinelCompose.services['redis-replica']?.command ?? []).join(' ')
  t.match(replica, /--replicaof redis-primary 6379/, 'the replica follows the primary')
  for (const server of ['redis-primary', 'redis-replica']) {
    t.match(sentinelCompose.services[server]?.command, ['redis-server', '--save', '', '--appendonly', 'no'], `${server}: a cache, nothing persisted`)
  }
})
