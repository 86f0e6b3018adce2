import type { Socket } from 'node:net'

/**
 * Makes the server close this connection in stages (RFC 9112 §9.6) rather than at once.
 *
 * Node's HTTP server closes a connection right after an answer that says `Connection: close`: it calls
 * the socket's `destroySoon()`, which sends the FIN once the answer is flushed and then closes the socket.
 * A client that pipelined requests past that answer (past the request cap, or during a shutdown) has
 * them sitting unread in the kernel, and closing a socket with unread bytes makes the kernel send a
 * reset, which can discard answers the client has not read yet: such a client lost its last answers, or
 * saw ECONNRESET instead of the end of the connection.
 *
 * Here the FIN still goes out after the last answer, but the socket stays open for reading: what the
 * client still sends is dropped, never parsed, until it closes its side (the socket then closes by
 * itself) or `lingerMs` passes. `onLinger` runs first, for whatever else holds the socket paused.
 */
export function closeInStages (socket: Socket, lingerMs: number, onLinger: (socket: Socket) => void): void {
  // Node calls it when present and ends the socket itself otherwise; an own property leaves every other socket alone.
  socket.destroySoon = () => { linger(socket, lingerMs, onLinger) }
}

function linger (socket: Socket, lingerMs: number, onLinger: (socket: Socket) => void): void {
  socket.end()
  if (socket.destroyed) return
  const deadline = setTimeout(() => { socket.destroy() }, lingerMs)
  deadline.unref()
  socket.once('close', () => { clearTimeout(deadline) })
  onLinger(socket)
  // Node's parser reads this socket's handle directly until a 'data' listener appears, and then through its
  // own 'data' listener: removing that one and adding ours leaves the bytes to no request.
  socket.removeAllListeners('data')
  socket.on('data', dropBytes)
  // The parser may have stopped the handle reading (a connection held paused, or one whose answers piled
  // up), behind the stream's back: the stream believes a read is under way and would never start one.
  // Its own read hook starts the handle when it is not reading.
  socket._read(0)
  socket.resume()
}

function dropBytes (): void {}
