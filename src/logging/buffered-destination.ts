import type { DestinationStream } from 'pino'

/** What is written to: pino's destination (SonicBoom) in production. */
export interface LineSink {
  write (text: string): unknown
  flush? (callback?: (error?: Error | null) => void): void
  flushSync? (): void
}

export interface BufferedDestinationOptions {
  /** Lines are handed on once this many characters have gathered. */
  bufferCharacters: number
  /** ...and at least this often. */
  flushIntervalMs: number
}

/**
 * Gathers log lines and hands them to `sink` in large chunks: at `bufferCharacters`, at least every
 * `flushIntervalMs`, on `flush()`/`flushSync()` and at process exit. SonicBoom can buffer by itself
 * (`minLength`), but it measures the UTF-8 length of its whole pending buffer on every write, so each
 * line would cost in proportion to the buffer: here a line costs a string append, and the sink sees
 * one write per chunk. One destination for every line, pino's and the access log's, keeps their order.
 */
export class BufferedDestination implements DestinationStream {
  readonly #sink: LineSink
  readonly #bufferCharacters: number
  #pending = ''
  #closed = false
  readonly #timer: NodeJS.Timeout
  readonly #flushAtExit = (): void => { this.flushSync() }

  constructor (sink: LineSink, options: BufferedDestinationOptions) {
    this.#sink = sink
    this.#bufferCharacters = options.bufferCharacters
    this.#timer = setInterval(() => { this.#handOn() }, options.flushIntervalMs).unref()
    process.once('exit', this.#flushAtExit)
  }

  write (line: string): boolean {
    if (this.#closed) return this.#sink.write(line) !== false
    this.#pending += line
    if (this.#pending.length >= this.#bufferCharacters) this.#handOn()
    return true
  }

  flush (callback?: (error?: Error | null) => void): void {
    this.#handOn()
    if (this.#sink.flush !== undefined) this.#sink.flush(callback)
    else callback?.()
  }

  flushSync (): void {
    this.#handOn()
    this.#sink.flushSync?.()
  }

  /**
   * Writes what is gathered and stops gathering: what the process logs after the app closed goes straight
   * to the sink, which stays open (stdout outlives the app).
   */
  close (): void {
    this.flushSync()
    this.#closed = true
    clearInterval(this.#timer)
    process.removeListener('exit', this.#flushAtExit)
  }

  #handOn (): void {
    if (this.#pending === '') return
    const chunk = this.#pending
    this.#pending = ''
    this.#sink.write(chunk)
  }
}
