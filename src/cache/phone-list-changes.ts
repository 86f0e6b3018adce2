import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { parsePhoneListChange, phoneListChangesChannel } from './redis-phone-list-store.js'
import type { PhoneListChangeListener } from './tiered-phone-list-store.js'

// A connection can die without closing (a partition drops packets, not the socket): one PING a
// second, and a subscriber silent for longer than SILENCE_LIMIT_MS is taken for lost.
const HEARTBEAT_INTERVAL_MS = 1_000
const SILENCE_LIMIT_MS = 2_500

export interface PhoneListChangeFeed {
  /** Resolves once subscribed, or after `maxWaitMs` (start-up goes on; the memory tier waits). */
  subscribed (maxWaitMs: number): Promise<void>
  /** Whether every change is heard now (subscribed, and not silent for too long). */
  isListening (): boolean
  /** Stops listening; the connection is its owner's to close. */
  stop (): void
}

/**
 * Follows the shared store's changes on a connection of its own (a subscribed connection can send
 * nothing else) and tells the listener what it hears, and when it can no longer hear: at once when
 * the connection closes, so that not one change can be missed unnoticed. Every (re)connection
 * subscribes anew.
 */
export function followPhoneListChanges (subscriber: Redis, keyPrefix: string, listener: PhoneListChangeListener, log: FastifyBaseLogger): PhoneListChangeFeed {
  const channel = phoneListChangesChannel(keyPrefix)
  let listening = false
  let stopped = false
  let lastHeardAtMs = 0
  const waiters = new Set<() => void>()

  function becomeDeaf (reason: string): void {
    if (!listening) return
    listening = false
    listener.deaf()
    if (!stopped) log.warn({ reason }, 'phone list changes unheard: memory tier emptied and unused until resubscribed')
  }

  function subscribe (): void {
    subscriber.subscribe(channel).then(() => {
      if (stopped || subscriber.status !== 'ready') return
      listening = true
      lastHeardAtMs = Date.now()
      listener.listening()
      for (const wake of waiters) wake()
      log.info('phone list changes heard: memory tier in use')
    }, (error: unknown) => {
      log.warn({ err: error }, 'could not subscribe to phone list changes; reconnecting')
      subscriber.disconnect(true)
    })
  }

  const onMessage = (from: string, message: string): void => {
    if (from !== channel) return
    lastHeardAtMs = Date.now()
    const { appkey, version } = parsePhoneListChange(message)
    listener.changed(appkey, version)
  }
  const onClose = (): void => { becomeDeaf('connection closed') }
  // The shared connection's log already says when Redis is unavailable.
  const onError = (): void => {}
  subscriber.on('message', onMessage)
  subscriber.on('ready', subscribe)
  subscriber.on('close', onClose)
  subscriber.on('error', onError)
  if (subscriber.status === 'ready') subscribe()

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
    stop () {
      stopped = true
      clearInterval(heartbeat)
      becomeDeaf('stopped')
      subscriber.off('message', onMessage)
      subscriber.off('ready', subscribe)
      subscriber.off('close', onClose)
    },
  }
}
