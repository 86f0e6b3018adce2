import Type, { type Static, type TSchema } from 'typebox'
import Value from 'typebox/value'

const LogLevelSchema = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level))
)

const PositiveInteger = (defaultValue: number, description: string) =>
  Type.Integer({ minimum: 1, default: defaultValue, description })

/**
 * The environment the service reads, and so its configuration type: one schema, no hand-written twin.
 * Defaults live here and nowhere else; `.env.example` documents the same names.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'listen port' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'listen address' }),
  LOG_LEVEL: Type.Unsafe<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>({
    ...LogLevelSchema,
    default: 'info',
  }),
  TRUST_PROXY: Type.Boolean({ default: false, description: 'trust X-Forwarded-For to find the client address' }),
  NXCLOUD_BASE_URL: Type.String({ pattern: '^https?://[^/?#]+/?$', default: 'https://api2.nxcloud.com' }),
  NXCLOUD_ACCESS_KEY: Type.String({ minLength: 1 }),
  NXCLOUD_ACCESS_SECRET: Type.String({ minLength: 1 }),
  NXCLOUD_TIMEOUT_MS: PositiveInteger(5000, 'whole upstream call budget'),
  NXCLOUD_MAX_CONNECTIONS: PositiveInteger(32, 'keep-alive sockets to NxCloud per instance'),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_COMMAND_TIMEOUT_MS: PositiveInteger(250, 'a Redis command slower than this counts as a cache failure'),
  CACHE_TTL_SECONDS: Type.Integer({ minimum: 0, default: 300 }),
  CACHE_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:_.-]{1,64}$', default: 'nxcloud-bff:' }),
  CACHE_MAX_ENTRIES: PositiveInteger(10_000, 'bound of the in-process cache'),
  RATE_LIMIT_MAX: PositiveInteger(100, 'requests per client per window'),
  RATE_LIMIT_WINDOW_MS: PositiveInteger(60_000, 'rate-limit window'),
  CORS_ORIGINS: Type.String({ default: '', description: 'comma-separated browser origins allowed to call; empty: CORS off' }),
  SHUTDOWN_TIMEOUT_MS: PositiveInteger(10_000, 'how long in-flight requests may take to finish on SIGTERM'),
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

const SECRET_VARIABLES = new Set(['NXCLOUD_ACCESS_SECRET'])

/** Reads the configuration from an environment, reporting every offending variable at once. */
export function loadConfig (env: Record<string, string | undefined>): Config {
  const known = pickKnownVariables(env)
  const converted: Record<string, unknown> = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, known)) as Record<string, unknown>
  const problems = Object.entries(variableSchemas).flatMap(([name, schema]) =>
    problemWith(name, schema, converted[name], known[name])
  )
  if (problems.length > 0) throw new ConfigError(problems)
  return converted as Config
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

// An empty variable (`REDIS_URL=`) means unset, as in most shells' and compose files' habits.
function pickKnownVariables (env: Record<string, string | undefined>): Record<string, string> {
  const known: Record<string, string> = {}
  for (const name of Object.keys(ConfigSchema.properties)) {
    const value = env[name]
    if (value !== undefined && value.trim() !== '') known[name] = value.trim()
  }
  return known
}

function expectationOf (name: string): string {
  const schema = (variableSchemas[name] ?? {}) as Record<string, unknown>
  if (schema['anyOf']) {
    const options = (schema['anyOf'] as Array<{ const: string }>).map((option) => option.const)
    return `must be one of ${options.join(', ')}`
  }
  if (schema['type'] === 'integer') {
    const bounds = [
      schema['minimum'] !== undefined ? `>= ${String(schema['minimum'])}` : '',
      schema['maximum'] !== undefined ? `<= ${String(schema['maximum'])}` : '',
    ].filter(Boolean).join(' and ')
    return `must be an integer${bounds ? ` ${bounds}` : ''}`
  }
  if (schema['type'] === 'boolean') return 'must be true or false'
  if (schema['pattern']) return `must match ${String(schema['pattern'])}`
  return 'is not valid'
}
