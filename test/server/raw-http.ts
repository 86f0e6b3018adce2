import { connect, type Socket } from 'node:net'

export interface RawExchange {
  /** Every byte the server sent, as text. */
  text: string
  /** From connecting until the server closed the connection (or the deadline). */
  elapsedMs: number
  /** False when the deadline passed with the connection still open. */
  closedByServer: boolean
}

export interface RawExchangeOptions {
  /** Later chunks are written one per interval, as a slow client would (trickle). */
  intervalMs?: number
  /** The exchange is abandoned after this long. */
  deadlineMs?: number
}

const DEFAULT_DEADLINE_MS = 10_000

/**
 * Writes bytes to the server over a raw TCP socket, the way no HTTP client would (malformed, oversized,
 * trickled), and collects what comes back until the server closes the connection.
 */
export async function rawExchange (port: number, chunks: string[], options: RawExchangeOptions = {}): Promise<RawExchange> {
  const started = Date.now()
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.setEncoding('utf8')
  socket.on('data', (data: string) => { text += data })
  // A server that closes on a client still writing answers with a reset; what it sent before still counts.
  socket.on('error', () => {})
  const [first = '', ...rest] = chunks
  socket.write(first)
  const trickle = setInterval(() => {
    const next = rest.shift()
    if (next === undefined || socket.destroyed) return clearInterval(trickle)
    socket.write(next)
  }, options.intervalMs ?? 0)
  try {
    const closedByServer = await new Promise<boolean>((resolve) => {
      const deadline = setTimeout(() => resolve(false), options.deadlineMs ?? DEFAULT_DEADLINE_MS)
      socket.once('close', () => {
        clearTimeout(deadline)
        resolve(true)
      })
    })
    return { text, elapsedMs: Date.now() - started, closedByServer }
  } finally {
    clearInterval(trickle)
    socket.destroy()
  }
}

export interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

/** The first HTTP/1.1 answer in what a server sent (header names lower-cased). */
export function firstAnswer (text: string): RawAnswer {
  const headEnd = text.indexOf('\r\n\r\n')
  if (headEnd === -1) throw new Error(`no complete HTTP answer in ${JSON.stringify(text.slice(0, 200))}`)
  const [statusLine = '', ...headerLines] = text.slice(0, headEnd).split('\r\n')
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1])
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = Number(headers['content-length'] ?? 0)
  return { status, headers, body: text.slice(headEnd + 4, headEnd + 4 + length) }
}

/** How many answers (status lines) a server sent. */
export function countAnswers (text: string): number {
  return text.match(/(?:^|\n|})HTTP\/1\.1 \d{3} /g)?.length ?? 0
}

const STATUS_LINE = /HTTP\/1\.1 (\d{3}) /g
// Longer than a status line, so that one split between two chunks is found whole in the next.
const KEPT_TAIL_CHARS = 16

/**
 * The status of every answer in what a connection receives, chunk by chunk, without keeping the bodies
 * (a client reading hundreds of megabytes of answers). Assumes no body holds a status line.
 */
export class StatusLines {
  readonly statuses: number[] = []
  #tail = ''

  push (chunk: string): void {
    const text = this.#tail + chunk
    let end = 0
    for (const match of text.matchAll(STATUS_LINE)) {
      this.statuses.push(Number(match[1]))
      end = match.index + match[0].length
    }
    this.#tail = text.slice(Math.max(end, text.length - KEPT_TAIL_CHARS))
  }
}

export interface ReadConnection {
  /** The status of every answer read. */
  statuses: number[]
  /** True when the connection ended with the server's FIN, false when it was reset. */
  endedCleanly: boolean
}

/** Reads a connection, until now paused, until the server ends or resets it: the statuses of its answers, the bodies dropped. */
export async function readUntilClosedByServer (socket: Socket): Promise<ReadConnection> {
  const lines = new StatusLines()
  let reset = false
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { lines.push(chunk) })
  socket.on('error', () => { reset = true })
  const ended = new Promise<boolean>((resolve) => {
    socket.once('end', () => { resolve(true) })
    socket.once('close', () => { resolve(false) })
  })
  socket.resume()
  return { statuses: lines.statuses, endedCleanly: await ended && !reset }
}
