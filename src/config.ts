import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import Type, { type Static, type TSchema } from 'typebox'
import Value from 'typebox/value'
import { levels, type LevelWithSilent } from 'pino'
import type { HostPort } from './redis/redis-client.js'

// pino's own levels, and `silent`.
const LogLevelSchema = Type.Union([...Object.keys(levels.values), 'silent'].map((level) => Type.Literal(level)))

const PositiveInteger = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, default: defaultValue, description })

// gRPC is not offered: its exporter would double the SDK's size for what an OTLP/HTTP port does as well.
const OtlpProtocolSchema = (defaultValue: 'http/protobuf' | undefined) => Type.Unsafe<'http/protobuf' | 'http/json'>({
  ...Type.Union([Type.Literal('http/protobuf'), Type.Literal('http/json')]),
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
})

const OptionalPath = (description: string) => Type.Optional(Type.String({ minLength: 1, description }))

/**
 * The environment the service reads, and so its configuration type: one schema, no hand-written twin.
 * Defaults live here and nowhere else; `.env.example` documents the same names.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'listen port' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'listen address' }),
  METRICS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 9464, description: 'Prometheus metrics listener port (on HOST); 0: off' }),
  LOG_LEVEL: Type.Unsafe<LevelWithSilent>({
    ...LogLevelSchema,
    default: 'info',
  }),
  TRUST_PROXY: Type.String({
    default: 'false',
    description: 'false, a hop count, or a comma-separated list of proxy addresses/CIDRs',
  }),
  NXCLOUD_BASE_URL: Type.String({ pattern: '^https?://[^/?#]+/?$', default: 'https://api2.nxcloud.com' }),
  NXCLOUD_ACCESS_KEY: Type.String({ minLength: 1 }),
  NXCLOUD_ACCESS_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  NXCLOUD_ACCESS_SECRET_FILE: OptionalPath('file holding the integrator secret (container secrets)'),
  NXCLOUD_ALLOW_DEMO_CREDENTIALS: Type.Boolean({
    default: false,
    description: 'accept the simulator\'s demo credentials and demo API keys (tests, benchmark, dev only)',
  }),
  NXCLOUD_TIMEOUT_MS: PositiveInteger(5000, 'whole upstream call budget'),
  NXCLOUD_MAX_CONNECTIONS: PositiveInteger(32, 'keep-alive sockets to NxCloud per instance'),
  NXCLOUD_MAX_CONCURRENCY: PositiveInteger(32, 'NxCloud calls in flight per instance (at most NXCLOUD_MAX_CONNECTIONS)'),
  NXCLOUD_MAX_QUEUE: Type.Integer({
    minimum: 0, default: 2000, description: 'memory guard: NxCloud calls waiting for a slot at most; a call waits only while it can still be answered within NXCLOUD_TIMEOUT_MS',
  }),
  NXCLOUD_MAX_ATTEMPTS: PositiveInteger(3, 'attempts per NxCloud call for transient failures, within NXCLOUD_TIMEOUT_MS'),
  NXCLOUD_BREAKER_FAILURE_RATIO: Type.Number({
    exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.5, description: 'the breaker opens when more than this share of the NxCloud attempts in its window failed',
  }),
  NXCLOUD_BREAKER_MIN_CALLS: PositiveInteger(10, 'attempts the breaker\'s window must hold before their failure ratio can open it'),
  NXCLOUD_BREAKER_WINDOW_MS: Type.Integer({ minimum: 1000, default: 10_000, description: 'the window of recent NxCloud attempts the breaker judges' }),
  NXCLOUD_BREAKER_OPEN_MS: PositiveInteger(10_000, 'how long the breaker stays open before one probe tests NxCloud'),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'a single Redis server (rediss:// for TLS)' })),
  REDIS_SENTINELS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated host:port of the Sentinels watching the master REDIS_SENTINEL_NAME' })),
  REDIS_SENTINEL_NAME: Type.Optional(Type.String({ minLength: 1, description: 'the master\'s name in the Sentinels\' configuration' })),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: 'the Sentinels\' own password (requirepass), when they have one' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated host:port of some nodes of a Redis Cluster; the others are discovered' })),
  REDIS_PASSWORD: Type.Optional(Type.String({ minLength: 1, description: 'password of the Redis servers (Sentinel or Cluster; with REDIS_URL when the URL has none)' })),
  REDIS_TLS: Type.Boolean({ default: false, description: 'TLS to the Redis servers and Sentinels (REDIS_URL says it with rediss://)' }),
  REDIS_COMMAND_TIMEOUT_MS: PositiveInteger(250, 'a Redis command slower than this counts as a Redis failure: Redis is then skipped until a probe answers'),
  CACHE_TTL_SECONDS: Type.Integer({ minimum: 0, default: 300, description: 'how long a list stays fresh; 0: no caching' }),
  CACHE_STALE_WHILE_REVALIDATE_SECONDS: Type.Integer({
    minimum: 0, default: 60, description: 'after freshness, how long a list is still served while one refresh replaces it',
  }),
  CACHE_STALE_IF_ERROR_SECONDS: Type.Integer({
    minimum: 0, default: 86_400, description: 'after freshness, how long a list is served when NxCloud fails',
  }),
  CACHE_NEGATIVE_TTL_SECONDS: Type.Integer({
    minimum: 0, default: 30, description: 'how long an unknown appkey (9008) is remembered; 0: not at all',
  }),
  CACHE_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: 'nxcloud-bff:' }),
  CACHE_MEMORY_MAX_MB: PositiveInteger(64, 'bound of the in-process cache (the memory tier with Redis), in MiB of lists; least recently used out first'),
  RATE_LIMIT_MAX: PositiveInteger(100, 'requests per caller (or per address without credentials) per window'),
  RATE_LIMIT_WINDOW_MS: PositiveInteger(60_000, 'rate-limit window'),
  RATE_LIMIT_SYNC_MS: Type.Integer({
    minimum: 0, default: 100, description: 'with Redis, how often each instance shares its rate-limit counts; 0: on every request (exact)',
  }),
  API_KEYS_FILE: OptionalPath('JSON file of API key hashes, re-read when it changes'),
  API_KEYS_RELOAD_INTERVAL_MS: PositiveInteger(2_000, 'how often the API key file is checked for changes'),
  JWT_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_TENANTS_CLAIM: Type.String({ pattern: '^[A-Za-z0-9_:./-]{1,128}$', default: 'appkeys' }),
  JWT_JWKS_COOLDOWN_MS: PositiveInteger(30_000, 'least time between two JWKS fetches caused by unknown key ids'),
  AUTH_DISABLED: Type.Boolean({ default: false, description: 'serve every tenant to anyone (explicit opt-out)' }),
  CORS_ORIGINS: Type.String({ default: '', description: 'comma-separated browser origins allowed to call; empty: CORS off' }),
  SHUTDOWN_DRAIN_DELAY_MS: Type.Integer({
    minimum: 0, default: 5_000, description: 'on SIGTERM, how long readiness fails while requests are still served, before the listener stops',
  }),
  SHUTDOWN_TIMEOUT_MS: PositiveInteger(10_000, 'how long in-flight requests may take to finish once the listener stops'),
  HTTP_HEADERS_TIMEOUT_MS: PositiveInteger(10_000, 'a client has this long to send the request line and headers; then 408 and the socket is closed'),
  HTTP_REQUEST_TIMEOUT_MS: PositiveInteger(15_000, 'a client has this long to send a whole request, body included; then 408 and the socket is closed'),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: PositiveInteger(72_000, 'how long an idle keep-alive connection is kept; longer than a load balancer\'s idle timeout'),
  HTTP_CONNECTION_TIMEOUT_MS: PositiveInteger(30_000, 'a connection with a request under way that moves no byte either way for this long is closed; longer than NXCLOUD_TIMEOUT_MS'),
  HTTP_MAX_REQUESTS_PER_SOCKET: PositiveInteger(1_000, 'requests served on one connection; its last answer says Connection: close and the socket is closed'),
  HTTP_CLOSE_LINGER_MS: PositiveInteger(5_000, 'a connection the server closes is still read from (and what comes dropped) until its client closes it or this long passes, so that the close resets no answer'),
  // At least 64 KiB, the largest high-water mark of a socket's buffer (Node 22 and later; 16 KiB before): a
  // buffer past its mark announces when it has drained, and the bound is judged again then.
  HTTP_MAX_UNSENT_BYTES_PER_CONNECTION: Type.Integer({
    minimum: 65_536,
    default: 1_048_576,
    description: 'bytes of answers a connection may hold unsent; past them its pipelined requests wait and it is not read from',
  }),
  // Tracing is on when either endpoint is set (src/observability/start-tracing.ts); the SDK reads the other OTEL_* variables itself.
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: 'OTLP/HTTP collector; traces go to <endpoint>/v1/traces' })),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: 'full OTLP/HTTP traces URL, instead of the above' })),
  OTEL_EXPORTER_OTLP_PROTOCOL: OtlpProtocolSchema('http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Type.Optional(OtlpProtocolSchema(undefined)),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, default: 'nxcloud-bff', description: 'service.name of the spans' }),
})

/** Fastify's `trustProxy` forms we accept: no proxy, a number of proxy hops, or the proxies' addresses. */
export type TrustProxy = false | number | string[]

type ConfigVariables = Static<typeof ConfigSchema>

/** The validated configuration: the secret resolved (from its variable or its file), TRUST_PROXY parsed. */
export type Config = Omit<ConfigVariables, 'NXCLOUD_ACCESS_SECRET' | 'NXCLOUD_ACCESS_SECRET_FILE' | 'TRUST_PROXY' | 'REDIS_SENTINELS' | 'REDIS_CLUSTER_NODES'> & {
  NXCLOUD_ACCESS_SECRET: string
  TRUST_PROXY: TrustProxy
  REDIS_SENTINELS?: HostPort[]
  REDIS_CLUSTER_NODES?: HostPort[]
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

const SECRET_VARIABLES = new Set(['NXCLOUD_ACCESS_SECRET', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'])
// Variables no longer read, whose meaning did not carry over: a deployment still setting one is told what replaced it.
const RETIRED_VARIABLES: Record<string, string> = {
  NXCLOUD_BREAKER_THRESHOLD: 'the breaker now judges the share of failed attempts over a window: ' +
    'set NXCLOUD_BREAKER_FAILURE_RATIO, NXCLOUD_BREAKER_MIN_CALLS and NXCLOUD_BREAKER_WINDOW_MS instead',
}
const JWT_VARIABLES = ['JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE'] as const
// Placeholder credentials from .env.example and the simulator's demo ones must never reach NxCloud.
const PLACEHOLDER_CREDENTIAL = /^(change-?me|demo-|example|your-)/i

/** Reads the configuration from an environment, reporting every offending variable at once. */
export function loadConfig (env: Record<string, string | undefined>): Config {
  const known = pickKnownVariables(env)
  const converted: Record<string, unknown> = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, known)) as Record<string, unknown>
  const problems = Object.entries(variableSchemas).flatMap(([name, schema]) =>
    problemWith(name, schema, converted[name], known[name])
  )
  // The checks across variables run too, so that one message still names everything to fix.
  const variables = converted as ConfigVariables
  const secret = resolveSecret(variables, problems)
  const trustProxy = parseTrustProxy(variables.TRUST_PROXY, problems)
  const sentinels = parseHostPorts('REDIS_SENTINELS', variables.REDIS_SENTINELS, problems)
  const clusterNodes = parseHostPorts('REDIS_CLUSTER_NODES', variables.REDIS_CLUSTER_NODES, problems)
  problems.push(...redisProblems(variables), ...authProblems(variables), ...placeholderProblems(variables, secret), ...upstreamProblems(variables), ...httpProblems(variables),
    ...retiredProblems(env))
  if (problems.length > 0 || secret === undefined || trustProxy === undefined) throw new ConfigError(problems)
  const { NXCLOUD_ACCESS_SECRET_FILE: _file, REDIS_SENTINELS: _sentinels, REDIS_CLUSTER_NODES: _nodes, ...rest } = variables
  return {
    ...rest,
    NXCLOUD_ACCESS_SECRET: secret,
    TRUST_PROXY: trustProxy,
    ...(sentinels === undefined ? {} : { REDIS_SENTINELS: sentinels }),
    ...(clusterNodes === undefined ? {} : { REDIS_CLUSTER_NODES: clusterNodes }),
  }
}

const variableSchemas = ConfigSchema.properties as unknown as Record<string, TSchema>
const requiredVariables = new Set<string>(ConfigSchema.required)

// Each variable is checked on its own so that one bad value cannot hide another.
function problemWith (name: string, schema: TSchema, value: unknown, given: string | undefined): string[] {
  if (value === undefined) return requiredVariables.has(name) ? [`${name} is required`] : []
  if (Value.Check(schema, value)) return []
  const shown = SECRET_VARIABLES.has(name) ? '(hidden)' : JSON.stringify(given)
  return [`${name}=${shown} ${expectationOf(name)}`]
}

// Container platforms mount secrets as files; a trailing newline from `echo` is not part of the secret.
function resolveSecret (variables: ConfigVariables, problems: string[]): string | undefined {
  const { NXCLOUD_ACCESS_SECRET: value, NXCLOUD_ACCESS_SECRET_FILE: file } = variables
  if (value !== undefined && file !== undefined) {
    problems.push('NXCLOUD_ACCESS_SECRET and NXCLOUD_ACCESS_SECRET_FILE are both set; set only one')
    return undefined
  }
  if (value !== undefined) return value
  if (file === undefined) {
    problems.push('NXCLOUD_ACCESS_SECRET is required (or NXCLOUD_ACCESS_SECRET_FILE naming a file that holds it)')
    return undefined
  }
  try {
    const secret = readFileSync(file, 'utf8').trim()
    if (secret !== '') return secret
    problems.push(`NXCLOUD_ACCESS_SECRET_FILE=${JSON.stringify(file)} is empty`)
  } catch (error) {
    problems.push(`NXCLOUD_ACCESS_SECRET_FILE=${JSON.stringify(file)} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  return undefined
}

// Proxy-addr's named ranges, as Fastify accepts them.
const NAMED_PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/**
 * `true` would trust every hop, so the left-most X-Forwarded-For, which the client writes itself,
 * would become its address: refused. A hop count or the proxies' own addresses make the client the
 * right-most hop that is not a trusted proxy.
 */
export function parseTrustProxy (value: string, problems: string[]): TrustProxy | undefined {
  const trimmed = value.trim().toLowerCase()
  if (trimmed === 'false' || trimmed === '0') return false
  if (trimmed === 'true') {
    problems.push('TRUST_PROXY=true would let any client choose its own address (the left-most X-Forwarded-For); ' +
      'set the number of proxies in front of the service (e.g. TRUST_PROXY=1) or their addresses (e.g. TRUST_PROXY=10.0.0.0/8)')
    return undefined
  }
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const entries = commaSeparated(value)
  const invalid = entries.filter((entry) => !isProxyAddress(entry))
  if (entries.length === 0 || invalid.length > 0) {
    problems.push(`TRUST_PROXY=${JSON.stringify(value)} must be false, a hop count, or a comma-separated list of ` +
      `addresses/CIDRs (or loopback, linklocal, uniquelocal)${invalid.length > 0 ? `; not an address: ${invalid.join(', ')}` : ''}`)
    return undefined
  }
  return entries
}

function isProxyAddress (entry: string): boolean {
  if (NAMED_PROXY_RANGES.has(entry)) return true
  const [address = '', prefix, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (prefix === undefined) return true
  const maxPrefix = family === 4 ? 32 : 128
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix
}

const REDIS_TOPOLOGY_VARIABLES = ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const

// One topology or none; the variables of one topology only with it.
function redisProblems (variables: ConfigVariables): string[] {
  const problems: string[] = []
  const topologies = REDIS_TOPOLOGY_VARIABLES.filter((name) => variables[name] !== undefined)
  if (topologies.length > 1) {
    problems.push(`${topologies.join(' and ')} are set together; set only one: REDIS_URL (one server), REDIS_SENTINELS (Sentinel) or REDIS_CLUSTER_NODES (Cluster)`)
  }
  if ((variables.REDIS_SENTINELS === undefined) !== (variables.REDIS_SENTINEL_NAME === undefined)) {
    problems.push('REDIS_SENTINELS and REDIS_SENTINEL_NAME go together: the Sentinels, and the name of the master they watch')
  }
  if (variables.REDIS_SENTINEL_PASSWORD !== undefined && variables.REDIS_SENTINELS === undefined) {
    problems.push('REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINELS')
  }
  const settings = (['REDIS_PASSWORD', 'REDIS_TLS'] as const).filter((name) => variables[name] !== undefined && variables[name] !== false)
  if (topologies.length === 0 && settings.length > 0) {
    problems.push(`${settings.join(' and ')} set without a Redis: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES`)
  }
  return problems
}

/** The non-empty, trimmed entries of a comma-separated setting. */
export function commaSeparated (list: string): string[] {
  return list.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/

/** `host:port,host:port` (an IPv6 address in brackets) into addresses; every bad entry is named. */
function parseHostPorts (name: string, list: string | undefined, problems: string[]): HostPort[] | undefined {
  if (list === undefined) return undefined
  const entries = commaSeparated(list)
  const addresses: HostPort[] = []
  const invalid: string[] = []
  for (const entry of entries) {
    const match = HOST_PORT.exec(entry)
    const port = Number(match?.[3])
    const host = match?.[1] ?? match?.[2]
    if (host === undefined || !(port >= 1 && port <= 65535)) invalid.push(entry)
    else addresses.push({ host, port })
  }
  if (invalid.length > 0 || addresses.length === 0) {
    problems.push(`${name}=${JSON.stringify(list)} must be a comma-separated list of host:port (an IPv6 address in brackets)` +
      `${invalid.length > 0 ? `; not host:port: ${invalid.join(', ')}` : ''}`)
    return undefined
  }
  return addresses
}

// More calls in flight than sockets would queue inside the HTTP pool, where waiting looks like NxCloud's slowness.
function upstreamProblems (variables: ConfigVariables): string[] {
  if (variables.NXCLOUD_MAX_CONCURRENCY <= variables.NXCLOUD_MAX_CONNECTIONS) return []
  return [`NXCLOUD_MAX_CONCURRENCY=${variables.NXCLOUD_MAX_CONCURRENCY} must not exceed NXCLOUD_MAX_CONNECTIONS=${variables.NXCLOUD_MAX_CONNECTIONS}`]
}

// Node refuses a headers timeout longer than the request timeout; a connection timeout shorter than the
// upstream budget would close the socket of a request still waiting for NxCloud.
function httpProblems (variables: ConfigVariables): string[] {
  const problems: string[] = []
  if (variables.HTTP_HEADERS_TIMEOUT_MS > variables.HTTP_REQUEST_TIMEOUT_MS) {
    problems.push(`HTTP_HEADERS_TIMEOUT_MS=${variables.HTTP_HEADERS_TIMEOUT_MS} must not exceed HTTP_REQUEST_TIMEOUT_MS=${variables.HTTP_REQUEST_TIMEOUT_MS}`)
  }
  if (variables.HTTP_CONNECTION_TIMEOUT_MS <= variables.NXCLOUD_TIMEOUT_MS) {
    problems.push(`HTTP_CONNECTION_TIMEOUT_MS=${variables.HTTP_CONNECTION_TIMEOUT_MS} must exceed NXCLOUD_TIMEOUT_MS=${variables.NXCLOUD_TIMEOUT_MS}`)
  }
  return problems
}

function authProblems (variables: ConfigVariables): string[] {
  const jwtSet = JWT_VARIABLES.filter((name) => variables[name] !== undefined)
  if (jwtSet.length > 0 && jwtSet.length < JWT_VARIABLES.length) {
    const missing = JWT_VARIABLES.filter((name) => variables[name] === undefined)
    return [`${missing.join(', ')} must be set too: JWT_JWKS_URL, JWT_ISSUER and JWT_AUDIENCE go together`]
  }
  if (variables.AUTH_DISABLED || variables.API_KEYS_FILE !== undefined || jwtSet.length > 0) return []
  return ['no caller authentication is configured: set API_KEYS_FILE (API keys for services) and/or ' +
    'JWT_JWKS_URL, JWT_ISSUER and JWT_AUDIENCE (tokens of your identity provider); ' +
    'to serve every tenant to anyone who reaches the port, set AUTH_DISABLED=true explicitly']
}

function placeholderProblems (variables: ConfigVariables, secret: string | undefined): string[] {
  if (variables.NXCLOUD_ALLOW_DEMO_CREDENTIALS) return []
  const placeholder = PLACEHOLDER_CREDENTIAL.test(variables.NXCLOUD_ACCESS_KEY ?? '') ||
    (secret !== undefined && PLACEHOLDER_CREDENTIAL.test(secret))
  return placeholder
    ? ['NXCLOUD_ACCESS_KEY / NXCLOUD_ACCESS_SECRET hold placeholder or demo values; set the real integrator credentials']
    : []
}

function retiredProblems (env: Record<string, string | undefined>): string[] {
  return Object.entries(RETIRED_VARIABLES)
    .filter(([name]) => (env[name] ?? '').trim() !== '')
    .map(([name, replacement]) => `${name} is no longer read: ${replacement}`)
}

// An empty variable (`REDIS_URL=`) means unset, as in most shells' and compose files' habits.
function pickKnownVariables (env: Record<string, string | undefined>): Record<string, string> {
  const known: Record<string, string> = {}
  for (const name of Object.keys(ConfigSchema.properties)) {
    const value = env[name]
    if (value !== undefined && value.trim() !== '') known[name] = value.trim()
  }
  return known
}

const BOUND_WORDS = { minimum: '>=', exclusiveMinimum: '>', maximum: '<=', exclusiveMaximum: '<' } as const

function expectationOf (name: string): string {
  const schema = (variableSchemas[name] ?? {}) as Record<string, unknown>
  if (schema['anyOf']) {
    const options = (schema['anyOf'] as Array<{ const: string }>).map((option) => option.const)
    return `must be one of ${options.join(', ')}`
  }
  if (schema['type'] === 'integer' || schema['type'] === 'number') {
    const bounds = Object.entries(BOUND_WORDS)
      .filter(([keyword]) => schema[keyword] !== undefined)
      .map(([keyword, word]) => `${word} ${String(schema[keyword])}`)
      .join(' and ')
    return `must be ${schema['type'] === 'integer' ? 'an integer' : 'a number'}${bounds ? ` ${bounds}` : ''}`
  }
  if (schema['type'] === 'boolean') return 'must be true or false'
  if (schema['pattern']) return `must match ${String(schema['pattern'])}`
  return 'is not valid'
}
