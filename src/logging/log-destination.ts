import { destination, type DestinationStream } from 'pino'

// SonicBoom's own options (pino's destination): lines are gathered to chunks of at least
// LOG_CHUNK_BYTES and each chunk is one write, at most LOG_FLUSH_INTERVAL_MS late on a quiet instance.
// SonicBoom measures the whole pending chunk on every line it takes (Buffer.byteLength of it), so a
// line costs more the larger the chunk, and fewer system calls pay for it only up to a point: 2 KiB was
// the cheapest per line, written to /dev/null and to a pipe (test/bench/log-chunk-sizes.ts).
// The write is synchronous: an asynchronous one goes through libuv's thread pool, and its hand-offs
// between threads cost more than pino's whole line (measured: README, Performance). As for Node's own
// stdout on a pipe, a reader that stops reading would hold the process up rather than lose lines.
const LOG_CHUNK_BYTES = 2048
const LOG_FLUSH_INTERVAL_MS = 1000

export interface LogDestination {
  readonly stream: DestinationStream
  /** Writes what is pending. */
  close (): void
}

/** stdout as pino's destination, written in chunks, flushed every second, on close and at exit. */
export function stdoutLogDestination (): LogDestination {
  const stream = destination({ dest: 1, sync: true, minLength: LOG_CHUNK_BYTES, periodicFlush: LOG_FLUSH_INTERVAL_MS })
  return { stream, close: () => { stream.flushSync() } }
}

/** A destination the caller made (tests): flushed synchronously on close when it can be. */
export function givenLogDestination (stream: DestinationStream): LogDestination {
  return {
    stream,
    close () {
      const flushSync = (stream as { flushSync?: () => void }).flushSync
      if (typeof flushSync === 'function') flushSync.call(stream)
    },
  }
}
