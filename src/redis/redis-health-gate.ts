import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from './redis-client.js'

// How often a probe asks whether Redis answers again, while it is skipped.
export const REDIS_PROBE_INTERVAL_MS = 500

/** A command not sent: Redis failed recently and no probe has answered since. */
export class RedisSkippedError extends Error {
  constructor (readonly reason: string) {
    super(`Redis skipped until a probe answers (${reason})`)
    this.name = 'RedisSkippedError'
  }
}

export interface RedisHealthGate {
  /** Whether commands are sent: false from a failure until a probe has answered. */
  readonly available: boolean
  /**
   * Sends `command` while Redis is available; otherwise rejects at once with RedisSkippedError, so
   * that no caller waits out a timeout for a Redis already seen failing. A failure closes the gate.
   */
  run<T> (command: () => Promise<T>): Promise<T>
  /** Stops probing and listening to the client. */
  close (): void
}

export interface RedisHealthGateOptions {
  client: RedisClient
  /** Resolves when Redis answers: a PING, or one to every master of a cluster. */
  probe: () => Promise<unknown>
  log: FastifyBaseLogger
}

/**
 * One judgment per process of whether Redis is worth asking, as a circuit breaker keeps one of its
 * upstream: the first failure (an error, a command timeout, a lost connection) closes the gate, every
 * command then fails at once without being sent, and a PING in the background every
 * REDIS_PROBE_INTERVAL_MS reopens it once it answers. Without it, each request would wait out the
 * command timeout of a frozen Redis in turn.
 */
export function createRedisHealthGate (options: RedisHealthGateOptions): RedisHealthGate {
  const { client, probe, log } = options
  // Open at first: a command sent before the connection is up fails at once (no offline queue) and closes it.
  let available = true
  let skippedFor = ''
  let probing = false
  let closed = false

  function failed (reason: string): void {
    if (!available) return
    available = false
    skippedFor = reason
    log.warn({ redis: { reason } }, 'redis failed: skipped until a probe answers; the memory tier and NxCloud serve meanwhile')
  }

  function recovered (): void {
    if (closed || available) return
    available = true
    log.info('redis answers again: used from now on')
  }

  function tryProbe (): void {
    if (available || probing || closed || client.status !== 'ready') return
    probing = true
    probe().then(recovered, () => {}).finally(() => { probing = false })
  }

  const timer = setInterval(tryProbe, REDIS_PROBE_INTERVAL_MS)
  // Probing is no reason to keep the process alive.
  timer.unref()
  // A connection made ready has just had Redis answer (its ready check): as good as a probe.
  const onReady = (): void => { recovered() }
  const onClose = (): void => { failed('connection closed') }
  client.on('ready', onReady)
  client.on('close', onClose)

  return {
    get available () { return available },
    run (command) {
      if (!available) return Promise.reject(new RedisSkippedError(skippedFor))
      return command().catch((error: unknown) => {
        failed(error instanceof Error ? error.message : String(error))
        throw error
      })
    },
    close () {
      closed = true
      clearInterval(timer)
      client.off('ready', onReady)
      client.off('close', onClose)
    },
  }
}
