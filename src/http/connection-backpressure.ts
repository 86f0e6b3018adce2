import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Node's HTTP server reads ahead on a connection and queues an answer per pipelined request, each holding
 * its bytes until the answers before it are sent. It stops reading once that queue passes the socket's
 * high-water mark, but only after the requests it already read (up to 32 reads of 64 KiB in one turn),
 * and it starts again as soon as one queued answer moves on to the socket. So a client that never reads
 * can have every request it sent answered in memory, whatever the answers weigh.
 *
 * This bounds it by bytes: a request pipelined behind an answer still unsent waits, and its connection
 * is not read from, while the connection's unsent answers exceed `maxUnsentBytes`. Waiting requests are
 * let through one at a time, each once the answer before it is made, so the bound is passed by the answer
 * being made (and, while the oldest answer is still being made too, by that one). The oldest answer on a
 * connection, which is every answer of a client that waits for its answers, goes through at once. What
 * Node parsed from the read under way when the first request waited (64 KiB of requests at most) is held,
 * unanswered, until the client reads or the connection times out.
 */
export interface ConnectionBackpressure {
  /** True when the request is pipelined behind an answer not yet sent: it must go through `wait`. */
  mustWait (response: ServerResponse): boolean
  /** Runs `proceed` when the answer to this pipelined request may be made; never, if the connection closes first. */
  wait (request: IncomingMessage, response: ServerResponse, proceed: () => void): void
  /** Bytes of answers made on this connection and not yet handed to the kernel. */
  unsentBytes (socket: Socket): number
  /** Requests on this connection waiting for room (0 when the connection never pipelined). */
  waitingRequests (socket: Socket): number
  /** The answers let through while queued behind another answer, not yet sent: they have no socket of their own yet. */
  queuedAnswers (socket: Socket): Iterable<ServerResponse>
  /** For a connection that will send no more answers: its waiting requests are never run, and it is no longer held paused. */
  abandon (socket: Socket): void
}

const GATE = Symbol('backpressureGate')

interface WaitingRequest {
  response: ServerResponse
  proceed: () => void
}

interface Gate {
  socket: Socket
  waiting: WaitingRequest[]
  /** The answer last let through, until it is known to be made. */
  making: ServerResponse | undefined
  /** Answers let through while queued: their bytes stay in their own buffer until they get the socket. */
  queued: Set<ServerResponse>
  /** Set while this gate holds the socket paused. */
  holdingSocket: boolean
  pumpScheduled: boolean
}

type GatedSocket = Socket & { [GATE]?: Gate }

export function createConnectionBackpressure (maxUnsentBytes: number): ConnectionBackpressure {
  // One request let through per turn at most: the next is judged once the answer to this one is made.
  const pump = (gate: Gate): void => {
    gate.pumpScheduled = false
    if (gate.socket.destroyed) return
    const next = gate.waiting[0]
    if (next === undefined) return releaseSocket(gate)
    if (gate.making !== undefined && !isMade(gate.making)) return
    gate.making = undefined
    if (unsentBytesOf(gate) > maxUnsentBytes) return
    gate.waiting.shift()
    letThrough(gate, next)
  }
  const schedulePump = (gate: Gate): void => {
    if (gate.pumpScheduled) return
    gate.pumpScheduled = true
    // After this turn's callbacks and promise jobs: an answer from memory is made by then.
    setImmediate(pump, gate)
  }
  const letThrough = (gate: Gate, { response, proceed }: WaitingRequest): void => {
    gate.making = response
    if (response.socket === null) gate.queued.add(response)
    // Sent (or abandoned): its bytes left the process, and a slow answer is made at the latest by then.
    const settled = () => {
      gate.queued.delete(response)
      schedulePump(gate)
    }
    response.once('finish', settled)
    response.once('close', settled)
    proceed()
    schedulePump(gate)
  }
  const gateOf = (socket: GatedSocket): Gate => {
    let gate = socket[GATE]
    if (gate === undefined) {
      const created: Gate = { socket, waiting: [], making: undefined, queued: new Set(), holdingSocket: false, pumpScheduled: false }
      gate = created
      socket[GATE] = created
      socket.on('drain', () => { schedulePump(created) })
      // Node resumes a socket it paused itself as soon as one queued answer moves on; this one stays paused.
      socket.on('resume', () => { if (created.holdingSocket) socket.pause() })
      // The requests still waiting are never run: their client is gone.
      socket.once('close', () => { forget(created) })
    }
    return gate
  }
  return {
    mustWait: (response) => response.socket === null,
    wait: (request, response, proceed) => {
      const gate = gateOf(request.socket)
      gate.waiting.push({ response, proceed })
      // Stopped at once, so that no more than the chunk being parsed is read ahead (libuv would read on,
      // up to 32 chunks in a turn); the requests parsed from one chunk all arrive before any of their
      // answers is made, so they are judged after this turn.
      holdSocket(gate)
      schedulePump(gate)
    },
    unsentBytes: (socket) => {
      const gate = (socket as GatedSocket)[GATE]
      return gate === undefined ? socket.writableLength : unsentBytesOf(gate)
    },
    waitingRequests: (socket) => (socket as GatedSocket)[GATE]?.waiting.length ?? 0,
    queuedAnswers: (socket) => (socket as GatedSocket)[GATE]?.queued ?? [],
    abandon: (socket) => {
      const gate = (socket as GatedSocket)[GATE]
      if (gate === undefined) return
      forget(gate)
      releaseSocket(gate)
    },
  }
}

function forget (gate: Gate): void {
  gate.waiting.length = 0
  gate.queued.clear()
}

function isMade (response: ServerResponse): boolean {
  return response.writableEnded || response.destroyed
}

function unsentBytesOf (gate: Gate): number {
  let bytes = gate.socket.writableLength
  // An answer that got the socket has moved its bytes to it, where they are counted above.
  for (const response of gate.queued) if (response.socket === null) bytes += response.writableLength
  return bytes
}

function holdSocket (gate: Gate): void {
  if (gate.holdingSocket) return
  gate.holdingSocket = true
  gate.socket.pause()
}

function releaseSocket (gate: Gate): void {
  if (!gate.holdingSocket) return
  gate.holdingSocket = false
  gate.socket.resume()
}
