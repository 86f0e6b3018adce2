import { eventually } from './eventually.js'

/** One JSON line the service logged (pino's fields and the service's), as the tests read it. */
export interface LogLine {
  level: number
  time: number
  msg?: string
  requestId?: string
  url?: string
  statusCode?: number
  [field: string]: unknown
}

/**
 * Where a test finds log lines: the lines `buildTestApp` captured (test/helper.ts), or the output of a
 * child process (test/server/server-process.ts) or its stdout text. Arrays and output objects grow
 * while the test holds them, so a poll over them sees new lines.
 */
export type LogSource = readonly string[] | { readonly stdout: string } | string

type Matcher<L> = (line: L) => boolean

/** Every complete line, parsed; a child's last line may still be on its way, so text after the last newline waits. */
export function parseLogLines<L extends object = LogLine> (source: LogSource): L[] {
  return linesOf(source).map((line) => JSON.parse(line) as L)
}

export function logLinesWith<L extends object = LogLine> (source: LogSource, matches: Matcher<L>): L[] {
  return parseLogLines<L>(source).filter(matches)
}

/** The first line that matches, if any. */
export function logLineWith<L extends object = LogLine> (source: LogSource, matches: Matcher<L>): L | undefined {
  return parseLogLines<L>(source).find(matches)
}

/** The first line that matches, once it is written (the service may write a line after its answer went out). */
export async function waitForLogLine<L extends object = LogLine> (source: LogSource, matches: Matcher<L>, what = 'a matching log line'): Promise<L> {
  return await eventually(() => logLineWith(source, matches), { what })
}

function linesOf (source: LogSource): string[] {
  if (typeof source !== 'string' && !('stdout' in source)) return source.filter((line) => line !== '')
  const text = typeof source === 'string' ? source : source.stdout
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((line) => line !== '')
}
