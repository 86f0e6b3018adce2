import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'
import type { Config } from '../config.js'

/** A connection to Redis in any of the three topologies; both classes take the same commands. */
export type RedisClient = Redis | Cluster

export interface HostPort {
  host: string
  port: number
}

/** Where Redis is, as the configuration says: exactly one topology. */
export type RedisTopology =
  | { kind: 'standalone', url: string, password: string | undefined, tls: boolean }
  | { kind: 'sentinel', sentinels: HostPort[], name: string, password: string | undefined, sentinelPassword: string | undefined, tls: boolean }
  | { kind: 'cluster', nodes: HostPort[], password: string | undefined, tls: boolean }

type RedisVariables = Pick<Config, 'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' |
  'REDIS_CLUSTER_NODES' | 'REDIS_PASSWORD' | 'REDIS_TLS'>

/** The topology the configuration names (loadConfig has made sure it names at most one), or none. */
export function redisTopologyOf (config: RedisVariables): RedisTopology | undefined {
  const { REDIS_PASSWORD: password, REDIS_TLS: tls } = config
  if (config.REDIS_URL !== undefined) return { kind: 'standalone', url: config.REDIS_URL, password, tls }
  if (config.REDIS_SENTINELS !== undefined && config.REDIS_SENTINEL_NAME !== undefined) {
    return { kind: 'sentinel', sentinels: config.REDIS_SENTINELS, name: config.REDIS_SENTINEL_NAME, password, sentinelPassword: config.REDIS_SENTINEL_PASSWORD, tls }
  }
  if (config.REDIS_CLUSTER_NODES !== undefined) return { kind: 'cluster', nodes: config.REDIS_CLUSTER_NODES, password, tls }
  return undefined
}

const CONNECT_TIMEOUT_MS = 2_000
const MAX_RECONNECT_DELAY_MS = 2_000
// A cluster subscriber gives up on a node after these attempts and moves to the next one.
const SUBSCRIBER_ATTEMPTS_PER_NODE = 3

const reconnectDelay = (attempt: number): number => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS)

/**
 * Redis is an accelerator, never a dependency a request waits on: no offline queue (a command while
 * disconnected fails at once), a short command timeout, no retry of a command, endless background
 * reconnection.
 */
function connectionOptions (topology: RedisTopology, commandTimeoutMs: number | undefined): RedisOptions {
  return {
    enableOfflineQueue: false,
    ...(commandTimeoutMs === undefined ? {} : { commandTimeout: commandTimeoutMs }),
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: reconnectDelay,
    ...(topology.password === undefined ? {} : { password: topology.password }),
    ...(topology.tls ? { tls: {} } : {}),
  }
}

// The clients closed on purpose (closeRedis): any other client that ends was given up on by ioredis.
const closedOnPurpose = new WeakSet<RedisClient>()

/**
 * The client of the topology, from ioredis itself: `Redis` for a server or a Sentinel group, `Cluster`
 * for a cluster. `onEndedByIoredis` is told when a server or Sentinel client that was not closed ends,
 * just before it is connected again (see reconnectWhenEnded).
 */
export function createRedisClient (topology: RedisTopology, commandTimeoutMs: number, onEndedByIoredis: () => void = () => {}): RedisClient {
  const options = connectionOptions(topology, commandTimeoutMs)
  switch (topology.kind) {
    case 'standalone':
      return reconnectWhenEnded(new Redis(topology.url, options), onEndedByIoredis)
    case 'sentinel':
      return reconnectWhenEnded(new Redis({
        ...options,
        sentinels: topology.sentinels,
        name: topology.name,
        ...(topology.sentinelPassword === undefined ? {} : { sentinelPassword: topology.sentinelPassword }),
        // REDIS_TLS covers the Sentinels and the servers alike.
        enableTLSForSentinelMode: topology.tls,
        ...(topology.tls ? { sentinelTLS: {} } : {}),
        // Hears the sentinels' +switch-master and reconnects at once rather than at the next failure.
        failoverDetector: true,
        // A master demoted by a failover answers writes with READONLY: reconnect, and ask the sentinels again.
        reconnectOnError: (error) => error.message.startsWith('READONLY'),
        sentinelRetryStrategy: reconnectDelay,
      }), onEndedByIoredis)
    case 'cluster':
      return new Cluster(topology.nodes, {
        enableOfflineQueue: false,
        redisOptions: options,
        clusterRetryStrategy: reconnectDelay,
      })
  }
}

/**
 * Our retry strategies never give up, yet ioredis still ends a Sentinel client for good when a failover
 * notice (`+switch-master`, heard by its failover detector) arrives while the client is asking a Sentinel
 * where the master is: the connector drops that attempt, `connect()` rejects and the status becomes `end`,
 * with no reconnection. The instance would never use Redis again (seen after `kill -9` of a master, under
 * CPU load). A client that ends without closeRedis is connected again after the first reconnection delay.
 */
function reconnectWhenEnded (client: Redis, onEnded: () => void): Redis {
  client.on('end', () => {
    if (closedOnPurpose.has(client)) return
    setTimeout(() => {
      if (closedOnPurpose.has(client) || client.status !== 'end') return
      onEnded()
      // A failed attempt is retried by ioredis (its close handler), or ends the client again, and so comes back here.
      client.connect().catch(() => {})
    }, reconnectDelay(1)).unref()
  })
  return client
}

/** Resolves once Redis answers: a PING, to every master of a cluster (a cluster with a master down is not well). */
export async function pingRedis (client: RedisClient): Promise<void> {
  if (client instanceof Cluster) {
    const masters = client.nodes('master')
    if (masters.length === 0) throw new Error('no cluster master known')
    await Promise.all(masters.map((master) => master.ping()))
    return
  }
  await client.ping()
}

/**
 * Connections for the change feed (a subscribed connection can send nothing else), named for `CLIENT
 * LIST`. A server or Sentinel group: a duplicate of the client, which reconnects (to the current master)
 * forever. A cluster: a plain connection to one node, since classic pub/sub messages reach every node; it
 * ends after a few failed attempts, and the next connection goes to the next node known. (ioredis's own
 * cluster subscriber moves to another node silently, so the feed could not know it may have missed a change.)
 */
export function subscriberConnections (client: RedisClient, topology: RedisTopology, connectionName: string): () => Redis {
  if (!(client instanceof Cluster) || topology.kind !== 'cluster') {
    return () => (client as Redis).duplicate({ connectionName, autoResubscribe: false })
  }
  let turn = 0
  return () => {
    const known: ClusterNode[] = client.nodes('all').map((node) => ({ host: node.options.host, port: node.options.port }))
    const nodes = known.length > 0 ? known : topology.nodes
    const node = nodes[turn++ % nodes.length] as HostPort
    return new Redis({
      ...connectionOptions(topology, undefined),
      host: node.host,
      port: node.port,
      connectionName,
      autoResubscribe: false,
      retryStrategy: (attempt) => attempt > SUBSCRIBER_ATTEMPTS_PER_NODE ? null : reconnectDelay(attempt),
    })
  }
}

/**
 * Quits politely when the connection is up, then drops whatever is left: closing never waits on a Redis
 * that is gone, and `disconnect()` also closes the connections a Sentinel client keeps to the Sentinels
 * (its failover detector), which `quit()` leaves reconnecting.
 */
export async function closeRedis (client: RedisClient): Promise<void> {
  closedOnPurpose.add(client)
  if (client.status === 'ready') {
    // The connection may go away while quitting: disconnecting below covers it.
    await client.quit().catch(() => {})
  }
  client.disconnect()
}
