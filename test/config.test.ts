import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { exitOf, spawnServer } from './server/server-process.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from './simulator/demo-tenants.js'

const CREDENTIALS = { NXCLOUD_ACCESS_KEY: 'live-access-key', NXCLOUD_ACCESS_SECRET: 'live-secret-value-7f3a9c' }
// Tests about other variables opt out of caller authentication explicitly, as an operator would have to.
const NO_AUTH = { AUTH_DISABLED: 'true' }
const ENV = { ...CREDENTIALS, ...NO_AUTH }

function configErrorOf (env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('loadConfig accepted an invalid environment')
}

t.test('the two credentials and a choice about access are all that is needed; everything else has a default', async (t) => {
  const config = loadConfig(ENV)
  t.match(config, {
    PORT: 3000,
    HOST: '0.0.0.0',
    LOG_LEVEL: 'info',
    NXCLOUD_BASE_URL: 'https://api2.nxcloud.com',
    NXCLOUD_TIMEOUT_MS: 5000,
    CACHE_TTL_SECONDS: 300,
    RATE_LIMIT_MAX: 100,
    RATE_LIMIT_WINDOW_MS: 60000,
    RATE_LIMIT_SYNC_MS: 100,
    NXCLOUD_ACCESS_KEY: CREDENTIALS.NXCLOUD_ACCESS_KEY,
    NXCLOUD_ACCESS_SECRET: CREDENTIALS.NXCLOUD_ACCESS_SECRET,
  })
  t.equal(config.REDIS_URL, undefined)
  t.notOk('REDIS_URL' in config, 'REDIS_URL is absent, not an empty string')
})

t.test('numeric strings become numbers', async (t) => {
  const config = loadConfig({
    ...ENV,
    PORT: '8080',
    NXCLOUD_TIMEOUT_MS: '1500',
    CACHE_TTL_SECONDS: '42',
    RATE_LIMIT_MAX: '7',
    RATE_LIMIT_WINDOW_MS: '1000',
  })
  t.equal(config.PORT, 8080)
  t.equal(config.NXCLOUD_TIMEOUT_MS, 1500)
  t.equal(config.CACHE_TTL_SECONDS, 42)
  t.equal(config.RATE_LIMIT_MAX, 7)
  t.equal(config.RATE_LIMIT_WINDOW_MS, 1000)
})

t.test('CACHE_TTL_SECONDS=0 is accepted: it turns caching off', async (t) => {
  t.equal(loadConfig({ ...ENV, CACHE_TTL_SECONDS: '0' }).CACHE_TTL_SECONDS, 0)
})

t.test('an empty variable counts as unset', async (t) => {
  const config = loadConfig({ ...ENV, PORT: '', REDIS_URL: '', LOG_LEVEL: '  ', CACHE_TTL_SECONDS: '' })
  t.equal(config.PORT, 3000)
  t.equal(config.REDIS_URL, undefined)
  t.equal(config.LOG_LEVEL, 'info')
  t.equal(config.CACHE_TTL_SECONDS, 300)

  const error = configErrorOf({ NXCLOUD_ACCESS_KEY: '', NXCLOUD_ACCESS_SECRET: '', ...NO_AUTH })
  t.same(error.problems, [
    'NXCLOUD_ACCESS_KEY is required',
    'NXCLOUD_ACCESS_SECRET is required (or NXCLOUD_ACCESS_SECRET_FILE naming a file that holds it)',
  ], 'empty credentials are missing credentials')
})

t.test('one ConfigError names every offending variable at once', async (t) => {
  const offending = ['NXCLOUD_ACCESS_KEY', 'NXCLOUD_ACCESS_SECRET', 'PORT', 'LOG_LEVEL', 'CACHE_TTL_SECONDS', 'REDIS_URL', 'NXCLOUD_BASE_URL']
  const error = configErrorOf({
    ...NO_AUTH,
    PORT: 'abc',
    LOG_LEVEL: 'loud',
    CACHE_TTL_SECONDS: '-1',
    REDIS_URL: 'http://x',
    NXCLOUD_BASE_URL: 'ftp://x',
  })
  t.equal(error.name, 'ConfigError')
  for (const name of offending) {
    t.ok(error.problems.some((problem) => problem.startsWith(name)), `problems name ${name}`)
    t.match(error.message, name, `the message names ${name}`)
  }
  t.equal(error.problems.length, offending.length, 'one problem per offending variable')
})

// TypeBox stops gathering errors after a few; a failed LOG_LEVEL union alone spends most of them.
t.test('an invalid LOG_LEVEL does not hide the problems of the variables after it', async (t) => {
  const error = configErrorOf({ ...ENV, LOG_LEVEL: 'loud', CACHE_TTL_SECONDS: '-1', REDIS_URL: 'http://x' })
  t.same(error.problems.map((problem) => problem.split('=')[0]).sort(), ['CACHE_TTL_SECONDS', 'LOG_LEVEL', 'REDIS_URL'])
})

t.test('the secret never appears in the error message', async (t) => {
  const secret = CREDENTIALS.NXCLOUD_ACCESS_SECRET
  const error = configErrorOf({ NXCLOUD_ACCESS_SECRET: secret, PORT: 'abc', REDIS_URL: 'http://x' })
  t.notMatch(error.message, secret)
  t.notOk(error.problems.some((problem) => problem.includes(secret)))
  t.match(error.message, 'NXCLOUD_ACCESS_KEY is required')
})

t.test('Redis in one of three topologies: a server, a Sentinel group or a cluster, their addresses parsed', async (t) => {
  const sentinel = loadConfig({ ...ENV, REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.7:26380,[::1]:26381', REDIS_SENTINEL_NAME: 'mymaster', REDIS_SENTINEL_PASSWORD: 's3', REDIS_PASSWORD: 'p4', REDIS_TLS: 'true' })
  t.same(sentinel.REDIS_SENTINELS, [{ host: 'sentinel-a', port: 26379 }, { host: '10.0.0.7', port: 26380 }, { host: '::1', port: 26381 }])
  t.equal(sentinel.REDIS_SENTINEL_NAME, 'mymaster')
  t.equal(sentinel.REDIS_TLS, true)
  t.equal(sentinel.REDIS_URL, undefined)
  const cluster = loadConfig({ ...ENV, REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1:6379', REDIS_PASSWORD: 'p4' })
  t.same(cluster.REDIS_CLUSTER_NODES, [{ host: 'redis-0', port: 6379 }, { host: 'redis-1', port: 6379 }])
  t.equal(cluster.REDIS_TLS, false)
  t.notOk('REDIS_SENTINELS' in cluster, 'a topology not chosen is absent')
})

t.test('Redis topology problems are reported together, with the others, and passwords never shown', async (t) => {
  const error = configErrorOf({
    ...ENV,
    PORT: 'abc',
    REDIS_URL: 'redis://cache:6379',
    REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1,redis-2:99999',
    REDIS_SENTINEL_PASSWORD: 'sentinel-secret-9',
  })
  t.same(error.problems, [
    'PORT="abc" must be an integer >= 0 and <= 65535',
    'REDIS_CLUSTER_NODES="redis-0:6379,redis-1,redis-2:99999" must be a comma-separated list of host:port (an IPv6 address in brackets); not host:port: redis-1, redis-2:99999',
    'REDIS_URL and REDIS_CLUSTER_NODES are set together; set only one: REDIS_URL (one server), REDIS_SENTINELS (Sentinel) or REDIS_CLUSTER_NODES (Cluster)',
    'REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS',
  ])
  t.same(configErrorOf({ ...ENV, REDIS_SENTINELS: 'sentinel-a:26379' }).problems,
    ['REDIS_SENTINELS and REDIS_SENTINEL_NAME go together: the Sentinels, and the name of the master they watch'])
  const orphan = configErrorOf({ ...ENV, REDIS_PASSWORD: 'redis-secret-7', REDIS_TLS: 'true' })
  t.same(orphan.problems, ['REDIS_PASSWORD and REDIS_TLS set without a Redis: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES'])
  for (const secret of ['sentinel-secret-9', 'redis-secret-7']) t.notMatch(error.message + orphan.message, secret)
})

interface ProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

// The real entry point, as a container starts it, with nothing inherited but PATH.
async function runServer (t: Test, env: Record<string, string>): Promise<ProcessResult> {
  const { child, output } = spawnServer(t, env)
  const exit = await exitOf(child)
  return { ...exit, ...output }
}

t.test('the process refuses to start with a bad environment and says why in one message', async (t) => {
  const result = await runServer(t, { PORT: 'abc' })
  t.equal(result.code, 1)
  t.equal(result.signal, null)
  t.equal(result.stdout, '')
  t.match(result.stderr, /^Invalid configuration:\n/)
  t.equal(result.stderr.split('Invalid configuration').length, 2, 'exactly one message')
  for (const name of ['NXCLOUD_ACCESS_KEY', 'NXCLOUD_ACCESS_SECRET', 'PORT']) {
    t.match(result.stderr, name, `stderr names ${name}`)
  }
  t.notMatch(result.stderr, /\n\s+at /, 'no stack trace')
})

t.test('the process refuses to start with the demo credentials', async (t) => {
  const result = await runServer(t, {
    NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
    NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
  })
  t.equal(result.code, 1)
  t.equal(result.stdout, '', 'it never started: no log line')
  t.match(result.stderr, /^Invalid configuration:\n/)
  t.match(result.stderr, 'placeholder')
  t.match(result.stderr, 'NXCLOUD_ACCESS_KEY')
  t.notMatch(result.stderr, DEMO_ACCESS_SECRET, 'the secret is not printed')
})

t.test('without any caller authentication the configuration is refused, naming every way to set it', async (t) => {
  const error = configErrorOf(CREDENTIALS)
  t.equal(error.problems.length, 1)
  for (const name of ['API_KEYS_FILE', 'JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'AUTH_DISABLED=true']) {
    t.match(error.message, name, `the message names ${name}`)
  }
  t.equal(loadConfig({ ...CREDENTIALS, API_KEYS_FILE: '/run/secrets/api-keys.json' }).AUTH_DISABLED, false, 'an API key file is enough')
  const jwt = { JWT_JWKS_URL: 'https://idp.example.com/jwks.json', JWT_ISSUER: 'https://idp.example.com/', JWT_AUDIENCE: 'nxcloud-bff' }
  t.equal(loadConfig({ ...CREDENTIALS, ...jwt }).JWT_AUDIENCE, 'nxcloud-bff', 'the three JWT variables are enough')
})

t.test('the JWT variables go together', async (t) => {
  const error = configErrorOf({ ...CREDENTIALS, JWT_JWKS_URL: 'https://idp.example.com/jwks.json', API_KEYS_FILE: '/k.json' })
  t.equal(error.problems.length, 1)
  t.match(error.problems[0], /JWT_ISSUER, JWT_AUDIENCE must be set too/)
})

t.test('the secret can come from a file, trimmed; not from both places; and an unreadable file is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const secretFile = join(dir, 'secret')
  writeFileSync(secretFile, 'file-held-secret-9c1d\n')
  const { NXCLOUD_ACCESS_KEY } = CREDENTIALS
  const config = loadConfig({ NXCLOUD_ACCESS_KEY, NXCLOUD_ACCESS_SECRET_FILE: secretFile, ...NO_AUTH })
  t.equal(config.NXCLOUD_ACCESS_SECRET, 'file-held-secret-9c1d')
  t.notOk('NXCLOUD_ACCESS_SECRET_FILE' in config, 'the path is not carried further')

  const both = configErrorOf({ ...ENV, NXCLOUD_ACCESS_SECRET_FILE: secretFile })
  t.match(both.problems, [/NXCLOUD_ACCESS_SECRET and NXCLOUD_ACCESS_SECRET_FILE are both set/])
  t.notMatch(both.message, CREDENTIALS.NXCLOUD_ACCESS_SECRET)

  const missing = configErrorOf({ NXCLOUD_ACCESS_KEY, NXCLOUD_ACCESS_SECRET_FILE: join(dir, 'absent'), ...NO_AUTH })
  t.match(missing.problems, [/NXCLOUD_ACCESS_SECRET_FILE=.*absent.* cannot be read \(ENOENT\)/])
  writeFileSync(secretFile, '\n')
  t.match(configErrorOf({ NXCLOUD_ACCESS_KEY, NXCLOUD_ACCESS_SECRET_FILE: secretFile, ...NO_AUTH }).problems, [/is empty/])
})

t.test('TRUST_PROXY takes false, a hop count or proxy addresses; true is refused with what to set instead', async (t) => {
  const trustProxy = (value: string) => loadConfig({ ...ENV, TRUST_PROXY: value }).TRUST_PROXY
  t.equal(trustProxy('false'), false)
  t.equal(trustProxy('0'), false)
  t.equal(trustProxy('2'), 2)
  t.same(trustProxy('10.0.0.0/8, 192.168.1.7 ,::1,fd00::/8,loopback'), ['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8', 'loopback'])

  const refused = configErrorOf({ ...ENV, TRUST_PROXY: 'true' })
  t.match(refused.problems, [/TRUST_PROXY=true .*TRUST_PROXY=1.*TRUST_PROXY=10\.0\.0\.0\/8/])
  for (const bad of ['yes', '10.0.0.0/33', '10.0.0.1,proxy.example.com', '::1/129', '1.2.3.4/8/1']) {
    t.match(configErrorOf({ ...ENV, TRUST_PROXY: bad }).problems, [/^TRUST_PROXY=/], `${bad} is refused`)
  }
})

t.test('npm start refuses to run without caller authentication, naming the variables to set', async (t) => {
  const result = await runServer(t, { ...CREDENTIALS, PORT: '0', HOST: '127.0.0.1' })
  t.equal(result.code, 1)
  t.equal(result.stdout, '', 'it never started: no log line')
  for (const name of ['API_KEYS_FILE', 'JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'AUTH_DISABLED']) {
    t.match(result.stderr, name, `stderr names ${name}`)
  }
})

t.test('SHUTDOWN_DRAIN_DELAY_MS defaults to Kubernetes-sized 5 s, 0 turns the drain off, a negative delay is refused', async (t) => {
  t.equal(loadConfig(ENV).SHUTDOWN_DRAIN_DELAY_MS, 5000)
  t.equal(loadConfig({ ...ENV, SHUTDOWN_DRAIN_DELAY_MS: '0' }).SHUTDOWN_DRAIN_DELAY_MS, 0)
  t.match(configErrorOf({ ...ENV, SHUTDOWN_DRAIN_DELAY_MS: '-1' }).problems, [/^SHUTDOWN_DRAIN_DELAY_MS=.*-1.* must be an integer >= 0$/])
})

t.test('the HTTP edge has bounded defaults, and timeouts that contradict each other are refused', async (t) => {
  t.match(loadConfig(ENV), {
    HTTP_HEADERS_TIMEOUT_MS: 10_000,
    HTTP_REQUEST_TIMEOUT_MS: 15_000,
    HTTP_KEEP_ALIVE_TIMEOUT_MS: 72_000,
    HTTP_CONNECTION_TIMEOUT_MS: 30_000,
    HTTP_MAX_REQUESTS_PER_SOCKET: 1_000,
    HTTP_CLOSE_LINGER_MS: 5_000,
    HTTP_MAX_UNSENT_BYTES_PER_CONNECTION: 1_048_576,
  })
  t.same(configErrorOf({ ...ENV, HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }).problems,
    ['HTTP_HEADERS_TIMEOUT_MS=20000 must not exceed HTTP_REQUEST_TIMEOUT_MS=10000'])
  t.same(configErrorOf({ ...ENV, NXCLOUD_TIMEOUT_MS: '30000' }).problems,
    ['HTTP_CONNECTION_TIMEOUT_MS=30000 must exceed NXCLOUD_TIMEOUT_MS=30000'], 'a connection waiting for NxCloud is not idle')
  t.match(configErrorOf({ ...ENV, HTTP_MAX_REQUESTS_PER_SOCKET: '0' }).problems, [/^HTTP_MAX_REQUESTS_PER_SOCKET=0 must be an integer >= 1/])
  t.match(configErrorOf({ ...ENV, HTTP_MAX_UNSENT_BYTES_PER_CONNECTION: '16384' }).problems,
    [/^HTTP_MAX_UNSENT_BYTES_PER_CONNECTION=16384 must be an integer >= 65536/], 'below a socket buffer\'s high-water mark')
})

t.test('the breaker judges a failure ratio over a window: defaults, bounds, and every bad value named at once', async (t) => {
  t.match(loadConfig(ENV), {
    NXCLOUD_BREAKER_FAILURE_RATIO: 0.5,
    NXCLOUD_BREAKER_MIN_CALLS: 10,
    NXCLOUD_BREAKER_WINDOW_MS: 10_000,
    NXCLOUD_MAX_QUEUE: 2_000,
  })
  t.equal(loadConfig({ ...ENV, NXCLOUD_BREAKER_FAILURE_RATIO: '0.25' }).NXCLOUD_BREAKER_FAILURE_RATIO, 0.25)
  for (const ratio of ['0', '1', '1.5', 'half']) {
    t.match(configErrorOf({ ...ENV, NXCLOUD_BREAKER_FAILURE_RATIO: ratio }).problems,
      [/^NXCLOUD_BREAKER_FAILURE_RATIO=.* must be a number > 0 and < 1$/], `${ratio} is refused`)
  }
  const error = configErrorOf({ ...ENV, NXCLOUD_BREAKER_FAILURE_RATIO: '2', NXCLOUD_BREAKER_MIN_CALLS: '0', NXCLOUD_BREAKER_WINDOW_MS: '500' })
  t.same(error.problems, [
    'NXCLOUD_BREAKER_FAILURE_RATIO=2 must be a number > 0 and < 1',
    'NXCLOUD_BREAKER_MIN_CALLS=0 must be an integer >= 1',
    'NXCLOUD_BREAKER_WINDOW_MS=500 must be an integer >= 1000',
  ])
})

t.test('NXCLOUD_BREAKER_THRESHOLD, whose consecutive count no longer exists, is refused with what replaced it', async (t) => {
  const error = configErrorOf({ ...ENV, NXCLOUD_BREAKER_THRESHOLD: '5', PORT: 'abc' })
  t.equal(error.problems.length, 2, 'beside the other problems')
  t.match(error.problems, [/^PORT/, /^NXCLOUD_BREAKER_THRESHOLD is no longer read: .*NXCLOUD_BREAKER_FAILURE_RATIO, NXCLOUD_BREAKER_MIN_CALLS and NXCLOUD_BREAKER_WINDOW_MS/])
  t.equal(loadConfig({ ...ENV, NXCLOUD_BREAKER_THRESHOLD: '' }).NXCLOUD_BREAKER_MIN_CALLS, 10, 'set empty, it is unset')
})
