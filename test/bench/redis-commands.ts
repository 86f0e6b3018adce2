/**
 * Counts the commands a Redis server processes, from its own `INFO stats` (total_commands_processed). The
 * count is server-wide: whatever else uses this Redis is in it too, so the benchmark also counts an idle
 * interval to see how much of a run's count is somebody else's.
 */
import { Redis } from 'ioredis'

// Redis counts a command once it has run: each INFO appears in the next reading, not in its own.
const OWN_COMMANDS_PER_READING = 1
const CONNECT_TIMEOUT_MS = 500

export interface RedisCommandCounter {
  /** total_commands_processed now. */
  read (): Promise<number>
  /** Commands others ran between two readings of this counter (its own INFO left out). */
  between (before: number, after: number): number
  close (): void
}

/** A counter on its own connection, or undefined when no Redis answers at `url`. */
export async function connectRedisCommandCounter (url: string): Promise<RedisCommandCounter | undefined> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
  } catch {
    redis.disconnect()
    return undefined
  }
  return {
    read: async () => totalCommandsProcessed(await redis.info('stats')),
    between: (before, after) => after - before - OWN_COMMANDS_PER_READING,
    close: () => { redis.disconnect() },
  }
}

export function totalCommandsProcessed (infoStats: string): number {
  const count = /^total_commands_processed:(\d+)\r?$/m.exec(infoStats)?.[1]
  if (count === undefined) throw new Error('INFO stats has no total_commands_processed')
  return Number(count)
}
