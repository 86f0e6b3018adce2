import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** The path of an executable `command` on the PATH, or undefined when none is installed. */
export function findOnPath (command: string): string | undefined {
  for (const directory of (process.env['PATH'] ?? '').split(delimiter)) {
    if (directory === '') continue
    const candidate = join(directory, command)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  return undefined
}
