import { destination, type DestinationStream } from 'pino'

// SonicBoom's own options (pino's destination): lines are handed to the kernel in chunks of at least
// LOG_CHUNK_BYTES, since an asynchronous write per line costs a thread-pool round trip, more than the
// rest of the line (measured: README, Performance); at most LOG_FLUSH_INTERVAL_MS late on a quiet
// instance. Past LOG_MAX_PENDING_BYTES (a stalled log reader) lines are dropped rather than the heap grown or the
// event loop blocked: serving goes before logging.
const LOG_CHUNK_BYTES = 4096
const LOG_FLUSH_INTERVAL_MS = 1000
const LOG_MAX_PENDING_BYTES = 8 * 1024 * 1024

export interface LogDestination {
  readonly stream: DestinationStream
  /** Writes what is pending, synchronously. */
  close (): void
}

/** stdout as pino's asynchronous destination, in chunks, flushed every second, on close and at exit. */
export function stdoutLogDestination (): LogDestination {
  const stream = destination({
    dest: 1,
    sync: false,
    minLength: LOG_CHUNK_BYTES,
    periodicFlush: LOG_FLUSH_INTERVAL_MS,
    maxLength: LOG_MAX_PENDING_BYTES,
  })
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
