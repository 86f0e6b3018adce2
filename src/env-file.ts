import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { ConfigError } from './config.js'

export interface EnvFileOutcome {
  path: string
  /** Names taken from the file. */
  applied: number
  /** Names the file sets too, whose value in the environment was kept. */
  keptFromEnvironment: number
}

/**
 * Reads a `.env` file into `env` when there is one. A variable already in the environment keeps its
 * value: the file holds one machine's settings, the environment is what was set for this run (a
 * container platform, a CI job, `PORT=4000 npm start`), so the more deliberate of the two wins.
 */
export function loadEnvFile (path: string, env: NodeJS.ProcessEnv): EnvFileOutcome | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    throw new ConfigError([`${path} exists but cannot be read (${code ?? 'error'})`])
  }
  const outcome: EnvFileOutcome = { path, applied: 0, keptFromEnvironment: 0 }
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (Object.hasOwn(env, name)) {
      outcome.keptFromEnvironment++
    } else {
      env[name] = value
      outcome.applied++
    }
  }
  return outcome
}
