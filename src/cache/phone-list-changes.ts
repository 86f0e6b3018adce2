import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { closeRedis } from '../redis/redis-client.js'
import { parsePhoneListChange, phoneListChangesChannel } from './redis-phone-list-store.js'
import type { PhoneListChangeListener } from './tiered-phone-list-store.js'

// A connection can die without closing (a partition drops packets, not the socket): one PING a
// second, and a subscriber silent for longer than SILENCE_LIMIT_MS is taken for lost.
const HEARTBEAT_INTERVAL_MS = 1_000
const SILENCE_LIMIT_MS = 2_500
// A connection that gave up (a cluster node gone) is replaced after this pause.
const REPLACE_DELAY_MS = 100

export interface PhoneListChangeFeed {
  /** Resolves once subscribed, or after `maxWaitMs` (start-up goes on; changes are unheard until then). */
  subscribed (maxWaitMs: number): Promise<void>
  /** Whether every change is heard now (subscribed, and not silent for too long). */
  isListening (): boolean
  /** Stops listening and closes the connection. */
  close (): Promise<void>
}

/**
 * Follows the shared store's changes on a connection of its own (a subscribed connection can send
 * nothing else) and tells the listener what it hears, and when it can no longer hear: at once when
 * the connection closes, so that not one change can be missed unnoticed. Every (re)connection
 * subscribes anew; a connection that gives up is replaced by the next `connect()` gives.
 */
export function followPhoneListChanges (connect: () => Redis, keyPrefix: string, listener: PhoneListChangeListener, log: FastifyBaseLogger): PhoneListChangeFeed {
  const channel = phoneListChangesChannel(keyPrefix)
  let listening = false
  let stopped = false
  let lastHeardAtMs = 0
  const waiters = new Set<() => void>()
  let subscriber = attach(connect())

  function becomeDeaf (reason: string): void {
    if (!listening) return
    listening = false
    listener.deaf()
    if (!stopped) log.warn({ reason }, 'phone list changes unheard: the memory tier answers what it holds while fresh, and is emptied once they are heard again')
  }

  function attach (connection: Redis): Redis {
    const subscribe = (): void => {
      connection.subscribe(channel).then(() => {
        if (stopped || connection.status !== 'ready' || connection !== subscriber) return
        listening = true
        lastHeardAtMs = Date.now()
        listener.listening()
        for (const wake of waiters) wake()
        log.info('phone list changes heard: what the memory tier held while they were not was dropped')
      }, (error: unknown) => {
        log.warn({ err: error }, 'could not subscribe to phone list changes; reconnecting')
        connection.disconnect(true)
      })
    }
    connection.on('message', (from: string, message: string) => {
      if (from !== channel) return
      lastHeardAtMs = Date.now()
      const { appkey, version } = parsePhoneListChange(message)
      listener.changed(appkey, version)
    })
    connection.on('ready', subscribe)
    connection.on('close', () => { becomeDeaf('connection closed') })
    connection.on('end', () => {
      if (stopped) return
      setTimeout(() => { if (!stopped) subscriber = attach(connect()) }, REPLACE_DELAY_MS).unref()
    })
    // The shared connection's log already says when Redis is unavailable.
    connection.on('error', () => {})
    if (connection.status === 'ready') subscribe()
    return connection
  }

  const heartbeat = setInterval(() => {
    if (!listening) return
    if (Date.now() - lastHeardAtMs > SILENCE_LIMIT_MS) {
      becomeDeaf('no answer to heartbeat')
      subscriber.disconnect(true)
      return
    }
    subscriber.ping().then(() => { lastHeardAtMs = Date.now() }, () => {})
  }, HEARTBEAT_INTERVAL_MS)
  heartbeat.unref()

  return {
    async subscribed (maxWaitMs) {
      if (listening) return
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, maxWaitMs)
        waiters.add(wake)
        function wake (): void {
          clearTimeout(timer)
          waiters.delete(wake)
          resolve()
        }
      })
    },
    isListening: () => listening,
    async close () {
      stopped = true
      clearInterval(heartbeat)
      becomeDeaf('stopped')
      await closeRedis(subscriber)
    },
  }
}
