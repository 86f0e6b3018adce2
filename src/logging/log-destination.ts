import { destination, type DestinationStream } from 'pino'

// pino's asynchronous destination hands lines to the kernel in chunks of at least this many bytes
// (SonicBoom's `minLength`): one write per line costs a thread-pool round trip, more than the rest of a
// cache hit (measured: see README, Performance). Chunks are written at least this often, so a quiet
// service's lines are not held back, and synchronously on close and at exit.
const LOG_CHUNK_BYTES = 4096
const LOG_FLUSH_INTERVAL_MS = 1000

export interface LogDestination {
  readonly stream: DestinationStream
  /** Writes what is pending, synchronously, and stops the periodic flush. */
  close (): void
}

/** stdout as pino's documented asynchronous logging: buffered in chunks, flushed every second, on close and at exit. */
export function stdoutLogDestination (): LogDestination {
  const stream = destination({ dest: 1, sync: false, minLength: LOG_CHUNK_BYTES })
  const timer = setInterval(() => { stream.flush() }, LOG_FLUSH_INTERVAL_MS).unref()
  return {
    stream,
    close () {
      clearInterval(timer)
      stream.flushSync()
    },
  }
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
