import { connect, type Socket } from 'node:net'

/**
 * How one request ended, seen from a client that keeps its connections alive and honours `Connection: close`
 * (sends nothing more on a connection whose answer said close, and opens another):
 * - `answered`, `answered-close`: an answer, keeping the connection or closing it;
 * - `reset`: ECONNRESET or EPIPE after the request was sent, before its answer: the client cannot tell
 *   whether it was served;
 * - `closed-unanswered`: the server ended the connection (FIN) without answering the request.
 */
export type RequestOutcome = 'answered' | 'answered-close' | 'reset' | 'closed-unanswered'

/** Whether the connection had carried an answer before the request (kept alive) or was opened for it. */
export type ConnectionKind = 'fresh' | 'kept-alive'

export interface KeepAliveLoadStats {
  requests: Record<ConnectionKind, Record<RequestOutcome, number>>
  /** Connections that could not be opened (nothing was sent on them: a clean refusal). */
  refusedConnections: number
  /** After an answer that said close, how the server ended the connection: FIN, or a reset. */
  closes: { ended: number, reset: number }
  /** Answers that kept their connection although their request was sent after the mark. */
  keptAliveAfterMark: number
  statuses: Map<number, number>
}

export interface KeepAliveLoadOptions {
  /** The request every loop sends, over and over. */
  request: string
  connections: number
  /** Where a loop opens its next connection: a port, or undefined to stop (a balancer sends it elsewhere). */
  nextPort: () => number | undefined
}

export interface KeepAliveLoad {
  /** The stats of the requests sent to one port. */
  statsOf (port: number): KeepAliveLoadStats
  /** From now on, a request whose answer keeps its connection is counted in `keptAliveAfterMark`. */
  mark (): void
  /** Counts from zero again, for every port: what came before (a warm-up) is left out. */
  restartCounts (): void
  /** Stops every loop once its request under way has ended. */
  stop (): Promise<void>
}

const REFUSED_RETRY_MS = 10
const HEAD_END = Buffer.from('\r\n\r\n')
const CONTENT_LENGTH = /\r\ncontent-length: *(\d+)/i
const CONNECTION_CLOSE = /\r\nconnection: *close/i

/**
 * `connections` loops, each sending its request over a kept-alive connection as soon as the previous
 * answer came, over raw sockets so that every outcome is seen as it happened on the wire (an HTTP client
 * library would retry, or fold a reset and an EOF into one error).
 */
export function startKeepAliveLoad (options: KeepAliveLoadOptions): KeepAliveLoad {
  const byPort = new Map<number, KeepAliveLoadStats>()
  const statsOf = (port: number): KeepAliveLoadStats => {
    let stats = byPort.get(port)
    if (stats === undefined) {
      stats = emptyStats()
      byPort.set(port, stats)
    }
    return stats
  }
  let marked = false
  let stopping = false
  const isStopping = () => stopping
  const loops = Array.from({ length: options.connections }, async () => {
    for (let port = options.nextPort(); !isStopping() && port !== undefined; port = options.nextPort()) {
      await oneConnection(port, options.request, statsOf(port), isStopping, () => marked)
    }
  })
  return {
    statsOf,
    mark: () => { marked = true },
    restartCounts: () => { for (const stats of byPort.values()) Object.assign(stats, emptyStats()) },
    stop: async () => {
      stopping = true
      await Promise.all(loops)
    },
  }
}

function emptyStats (): KeepAliveLoadStats {
  const outcomes = () => ({ answered: 0, 'answered-close': 0, reset: 0, 'closed-unanswered': 0 })
  return { requests: { fresh: outcomes(), 'kept-alive': outcomes() }, refusedConnections: 0, closes: { ended: 0, reset: 0 }, keptAliveAfterMark: 0, statuses: new Map() }
}

async function oneConnection (port: number, request: string, stats: KeepAliveLoadStats, stopping: () => boolean, marked: () => boolean): Promise<void> {
  const connection = await open(port)
  if (connection === undefined) {
    stats.refusedConnections++
    await new Promise((resolve) => setTimeout(resolve, REFUSED_RETRY_MS))
    return
  }
  let kind: ConnectionKind = 'fresh'
  try {
    while (!stopping()) {
      const afterMark = marked()
      const answer = await connection.exchange(request)
      // The server had closed the connection while it was idle: nothing was sent; the next one is opened.
      if (answer === undefined) return
      if (answer.kind === 'failure') {
        stats.requests[kind][answer.reset ? 'reset' : 'closed-unanswered']++
        return
      }
      stats.statuses.set(answer.status, (stats.statuses.get(answer.status) ?? 0) + 1)
      if (answer.close) {
        stats.requests[kind]['answered-close']++
        stats.closes[await connection.ended()]++
        return
      }
      stats.requests[kind].answered++
      if (afterMark) stats.keptAliveAfterMark++
      kind = 'kept-alive'
    }
  } finally {
    connection.socket.destroy()
  }
}

type Exchanged = { kind: 'answer', status: number, close: boolean } | { kind: 'failure', reset: boolean }

interface Connection {
  socket: Socket
  /** Sends the request and reads its answer; undefined when the connection had ended before it was sent. */
  exchange (request: string): Promise<Exchanged | undefined>
  /** Resolves once the server ended the connection: cleanly, or with a reset. */
  ended (): Promise<'ended' | 'reset'>
}

async function open (port: number): Promise<Connection | undefined> {
  const socket = connect(port, '127.0.0.1')
  const opened = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true))
    socket.once('error', () => resolve(false))
  })
  if (!opened) {
    socket.destroy()
    return undefined
  }
  let buffered = Buffer.alloc(0)
  // How the connection ended, once it has: 'EOF' for the server's FIN, else the error code.
  let end: string | undefined
  let wake: (() => void) | undefined
  const woken = async () => { await new Promise<void>((resolve) => { wake = resolve }) }
  const notify = () => {
    const waiting = wake
    wake = undefined
    waiting?.()
  }
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    notify()
  })
  socket.on('error', (error: NodeJS.ErrnoException) => {
    end ??= error.code ?? String(error)
    notify()
  })
  socket.on('end', () => {
    end ??= 'EOF'
    notify()
  })

  const nextAnswer = async (): Promise<Exchanged> => {
    for (;;) {
      const headEnd = buffered.indexOf(HEAD_END)
      if (headEnd !== -1) {
        const head = buffered.subarray(0, headEnd).toString('latin1')
        const answerEnd = headEnd + HEAD_END.length + Number(CONTENT_LENGTH.exec(head)?.[1] ?? 0)
        if (buffered.length >= answerEnd) {
          buffered = buffered.subarray(answerEnd)
          return { kind: 'answer', status: Number(head.slice('HTTP/1.1 '.length, 'HTTP/1.1 200'.length)), close: CONNECTION_CLOSE.test(head) }
        }
      }
      if (end !== undefined) return { kind: 'failure', reset: end !== 'EOF' }
      await woken()
    }
  }
  return {
    socket,
    exchange: async (request) => {
      if (end !== undefined) return undefined
      socket.write(request)
      return await nextAnswer()
    },
    ended: async () => {
      for (;;) {
        if (end !== undefined) return end === 'EOF' ? 'ended' : 'reset'
        await woken()
      }
    },
  }
}

/** Requests sent (refused connections aside). */
export function sentRequests (stats: KeepAliveLoadStats, kind?: ConnectionKind): number {
  const kinds: ConnectionKind[] = kind === undefined ? ['fresh', 'kept-alive'] : [kind]
  return kinds.reduce((sum, each) => sum + Object.values(stats.requests[each]).reduce((a, b) => a + b, 0), 0)
}

/** Every reset: of a request, or of a connection after an answer that said close. */
export function resetsIn (stats: KeepAliveLoadStats): number {
  return stats.requests.fresh.reset + stats.requests['kept-alive'].reset + stats.closes.reset
}

/** One line of counts, for a script or a test comment. */
export function describeKeepAliveLoad (stats: KeepAliveLoadStats): string {
  const outcomes = (kind: ConnectionKind) => Object.entries(stats.requests[kind]).map(([outcome, count]) => `${outcome} ${count}`).join(', ')
  const statuses = [...stats.statuses].map(([status, count]) => `${count} × ${status}`).join(', ') || 'none'
  return `${sentRequests(stats)} requests: on kept-alive connections ${outcomes('kept-alive')}; on new connections ${outcomes('fresh')}; ` +
    `connections refused ${stats.refusedConnections}; after an answer that said close, the server ended the connection ` +
    `${stats.closes.ended} times and reset it ${stats.closes.reset} times; statuses ${statuses}`
}
