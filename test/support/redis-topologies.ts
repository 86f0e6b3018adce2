/**
 * Redis topologies of a test's own on loopback: a single server, a Sentinel group (a master, a replica
 * and three Sentinels) and a three-master Cluster, from Debian's `redis-server` (Sentinel is
 * `redis-server --sentinel`) and `redis-cli --cluster create`. Nothing is persisted; every process is
 * killed in teardown, at exit, and by a watchdog should the test process itself be killed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis } from 'ioredis'
import type { RedisClient } from '../../src/redis/redis-client.js'
import { eventually } from './eventually.js'

export type TopologyKind = 'standalone' | 'sentinel' | 'cluster'

/** Whoever owns the topology: a tap test, or a script with a teardown list of its own. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

export const SENTINEL_MASTER_NAME = 'nxcloud-bff-test'
// A cluster node also listens on its port + 10000 (the cluster bus).
const CLUSTER_BUS_OFFSET = 10_000
const PORT_RANGE = { from: 20_000, to: 29_999 }
const READY_TIMEOUT_MS = 30_000
const WATCHDOG_POLL_SECONDS = 0.5
// Sentinel's timings, short so that a failover takes seconds: a master silent this long is down.
const SENTINEL_DOWN_AFTER_MS = 1_000
const SENTINEL_FAILOVER_TIMEOUT_MS = 5_000
const SENTINEL_QUORUM = 2
const CLUSTER_NODE_TIMEOUT_MS = 2_000

/** One redis-server process, which the test can crash, freeze, thaw and start again on its port. */
export interface RedisProcess {
  readonly port: number
  readonly pid: number
  /** `kill -9`. */
  crash (): Promise<void>
  /** `kill -STOP`: the sockets stay open, nothing answers, as in a partition. */
  freeze (): void
  /** `kill -CONT`. */
  thaw (): void
  /** Starts it again on the same port, with the same arguments (after a crash). */
  restart (): Promise<void>
}

export interface Topology {
  kind: TopologyKind
  /** The variables that point the service at this topology. */
  env: Record<string, string>
  /** The servers holding data (a Sentinel group's master and replica, a cluster's masters). */
  servers: RedisProcess[]
  /** A client of the test's own, as the service would connect (closed in teardown). */
  connect (): Promise<RedisClient>
  /** Waits until the topology is well again (after its servers were crashed and restarted, or thawed). */
  settle (): Promise<void>
}

export interface SentinelTopology extends Topology {
  kind: 'sentinel'
  sentinels: RedisProcess[]
  /** The port of the master the Sentinels name now. */
  masterPort (): Promise<number>
  /** `SENTINEL FAILOVER`, then waits until the Sentinels name another master that says it is one. */
  failover (): Promise<number>
  /** Waits until the Sentinels name a master other than `oldPort` that says it is one. */
  newMaster (oldPort: number): Promise<number>
}

interface Workspace {
  dir: string
  start (name: string, args: string[]): Promise<RedisProcess>
  /** Kills every process it started. */
  stop (): void
}

/** The topology of `kind`, started now and torn down with the test. */
export async function startTopology (t: Teardown, kind: 'sentinel'): Promise<SentinelTopology>
export async function startTopology (t: Teardown, kind: TopologyKind): Promise<Topology>
export async function startTopology (t: Teardown, kind: TopologyKind): Promise<Topology> {
  const workspace = openWorkspace(t)
  switch (kind) {
    case 'standalone': return await startStandalone(t, workspace)
    case 'sentinel': return await startSentinelGroup(t, workspace)
    case 'cluster': return await startCluster(t, workspace)
  }
}

async function startStandalone (t: Teardown, workspace: Workspace): Promise<Topology> {
  const port = await freePort()
  const server = await workspace.start(`server-${port}`, serverArgs(port, workspace.dir))
  const url = `redis://127.0.0.1:${port}`
  return {
    kind: 'standalone',
    env: { REDIS_URL: url },
    servers: [server],
    connect: () => testClient(t, () => new Redis(url, testOptions)),
    async settle () {
      await eventually(() => withClient(port, (client) => client.ping()).then(() => true, () => false), { what: 'Redis to answer', timeoutMs: READY_TIMEOUT_MS })
    },
  }
}

async function startSentinelGroup (t: Teardown, workspace: Workspace): Promise<SentinelTopology> {
  const masterPort = await freePort()
  const replicaPort = await freePort()
  const master = await workspace.start(`master-${masterPort}`, serverArgs(masterPort, workspace.dir))
  const replica = await workspace.start(`replica-${replicaPort}`, [...serverArgs(replicaPort, workspace.dir), '--replicaof', '127.0.0.1', String(masterPort)])
  const sentinels: RedisProcess[] = []
  for (let index = 0; index < 3; index++) {
    const port = await freePort()
    const configFile = join(workspace.dir, `sentinel-${port}.conf`)
    // Sentinel rewrites its configuration file as it learns: it must be a file of its own.
    writeFileSync(configFile, [
      `port ${port}`, 'bind 127.0.0.1', `dir ${workspace.dir}`,
      `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${masterPort} ${SENTINEL_QUORUM}`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${SENTINEL_MASTER_NAME} ${SENTINEL_FAILOVER_TIMEOUT_MS}`,
      '',
    ].join('\n'))
    sentinels.push(await workspace.start(`sentinel-${port}`, [configFile, '--sentinel']))
  }
  const sentinelClient = (port: number) => new Redis({ port, host: '127.0.0.1', ...testOptions })
  // A failover needs the replica known, and a quorum of Sentinels that know each other.
  await eventually(async () => await everySentinel(sentinels, sentinelClient, async (sentinel) => {
    const replicas = await sentinel.call('SENTINEL', 'REPLICAS', SENTINEL_MASTER_NAME) as unknown[]
    const peers = await sentinel.call('SENTINEL', 'SENTINELS', SENTINEL_MASTER_NAME) as unknown[]
    return replicas.length === 1 && peers.length === sentinels.length - 1
  }), { what: 'the Sentinels to know the replica and each other', timeoutMs: READY_TIMEOUT_MS })
  await eventually(async () => await replicaInSync(replicaPort), { what: 'the replica to be in sync', timeoutMs: READY_TIMEOUT_MS })

  const masterPortNow = async (): Promise<number> => {
    for (const sentinel of sentinels) {
      const client = sentinelClient(sentinel.port)
      try {
        const [, port] = await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME) as [string, string]
        return Number(port)
      } catch {
        // ask the next one
      } finally {
        client.disconnect()
      }
    }
    throw new Error('no Sentinel answers')
  }
  const newMaster = async (oldPort: number): Promise<number> => await eventually(async () => {
    const port = await masterPortNow().catch(() => oldPort)
    return port !== oldPort && await roleOf(port) === 'master' ? port : undefined
  }, { what: `a master other than ${oldPort}`, timeoutMs: READY_TIMEOUT_MS })

  return {
    kind: 'sentinel',
    env: {
      REDIS_SENTINELS: sentinels.map(({ port }) => `127.0.0.1:${port}`).join(','),
      REDIS_SENTINEL_NAME: SENTINEL_MASTER_NAME,
    },
    servers: [master, replica],
    sentinels,
    connect: () => testClient(t, () => new Redis({
      sentinels: sentinels.map(({ port }) => ({ host: '127.0.0.1', port })), name: SENTINEL_MASTER_NAME, ...testOptions,
    })),
    masterPort: masterPortNow,
    async settle () {
      await eventually(async () => {
        const port = await masterPortNow().catch(() => 0)
        const other = port === masterPort ? replicaPort : masterPort
        return await roleOf(port) === 'master' && await replicaInSync(other)
      }, { what: 'the master to answer and its replica to be in sync', timeoutMs: READY_TIMEOUT_MS })
    },
    async failover () {
      const oldPort = await masterPortNow()
      const sentinel = sentinelClient(sentinels[0]?.port ?? 0)
      try {
        await sentinel.call('SENTINEL', 'FAILOVER', SENTINEL_MASTER_NAME)
      } finally {
        sentinel.disconnect()
      }
      return await newMaster(oldPort)
    },
    newMaster,
  }
}

async function startCluster (t: Teardown, workspace: Workspace): Promise<Topology> {
  const ports: number[] = []
  const servers: RedisProcess[] = []
  for (let index = 0; index < 3; index++) {
    const port = await freePort(CLUSTER_BUS_OFFSET)
    ports.push(port)
    servers.push(await workspace.start(`cluster-${port}`, [
      ...serverArgs(port, workspace.dir),
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(workspace.dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS),
    ]))
  }
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8' })
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
  await clusterReady(ports)
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }))
  return {
    kind: 'cluster',
    env: { REDIS_CLUSTER_NODES: ports.map((port) => `127.0.0.1:${port}`).join(',') },
    // A restarted node finds the cluster it belongs to in its configuration file; settle() waits for it.
    servers,
    settle: () => clusterReady(ports),
    connect: () => testClient(t, () => new Cluster(nodes, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } })),
  }
}

/** Waits until every node of the cluster says it is well. */
export async function clusterReady (ports: number[]): Promise<void> {
  await eventually(async () => {
    for (const port of ports) {
      const info = await withClient(port, (client) => client.cluster('INFO')).catch(() => '')
      if (!String(info).includes('cluster_state:ok')) return false
    }
    return true
  }, { what: 'the cluster to be ready', timeoutMs: READY_TIMEOUT_MS })
}

const testOptions = { maxRetriesPerRequest: 1, lazyConnect: true } as const

async function testClient (t: Teardown, make: () => RedisClient): Promise<RedisClient> {
  const client = make()
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await client.connect()
  return client
}

/** A short-lived client of the server (or Sentinel) on `port`, for one question; disconnected after it. */
export async function withClient<T> (port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ port, host: '127.0.0.1', ...testOptions, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await use(client)
  } finally {
    client.disconnect()
  }
}

async function everySentinel (sentinels: RedisProcess[], make: (port: number) => Redis, check: (sentinel: Redis) => Promise<boolean>): Promise<boolean> {
  for (const { port } of sentinels) {
    const client = make(port)
    client.on('error', () => {})
    try {
      if (!await check(client)) return false
    } catch {
      return false
    } finally {
      client.disconnect()
    }
  }
  return true
}

async function roleOf (port: number): Promise<string | undefined> {
  const info = await withClient(port, (client) => client.info('replication')).catch(() => '')
  return /^role:(\w+)/m.exec(info)?.[1]
}

async function replicaInSync (port: number): Promise<boolean> {
  const info = await withClient(port, (client) => client.info('replication')).catch(() => '')
  return /^master_link_status:up/m.test(info)
}

function serverArgs (port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
}

/**
 * A temporary directory for the processes' files, and a watchdog: a detached shell that kills every
 * process whose pid file is there once the test process is gone, however it went.
 */
function openWorkspace (t: Teardown): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'nxcloud-bff-redis-'))
  const children = new Set<ChildProcess>()
  const watchdog = spawn('sh', ['-c',
    `while kill -0 ${process.pid} 2>/dev/null; do sleep ${WATCHDOG_POLL_SECONDS}; done; ` +
    `for f in "${dir}"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done; rm -rf "${dir}"`,
  ], { detached: true, stdio: 'ignore' })
  watchdog.unref()
  const stop = (): void => {
    for (const child of children) child.kill('SIGKILL')
  }
  process.once('exit', stop)
  t.teardown(async () => {
    const exits = [...children].filter((child) => child.exitCode === null && child.signalCode === null).map((child) => once(child, 'exit'))
    stop()
    await Promise.all(exits)
    process.off('exit', stop)
    watchdog.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  async function launch (name: string, args: string[]): Promise<ChildProcess> {
    const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    const pidFile = join(dir, `${name}.pid`)
    writeFileSync(pidFile, String(child.pid))
    child.once('exit', () => {
      children.delete(child)
      try { unlinkSync(pidFile) } catch {}
    })
    let output = ''
    const collect = (chunk: Buffer) => { output += chunk.toString('utf8') }
    child.stdout?.on('data', collect)
    child.stderr?.on('data', collect)
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server ${name} exited: ${output}`)
      return await withClient(portOf(args, 0), (client) => client.ping()).then(() => true, () => false)
    }, { what: `redis-server ${name} to answer`, timeoutMs: READY_TIMEOUT_MS })
    return child
  }

  return {
    dir,
    async start (name, args) {
      let child = await launch(name, args)
      const port = portOf(args, 0)
      return {
        port,
        get pid () { return child.pid ?? 0 },
        async crash () {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = once(child, 'exit')
          child.kill('SIGKILL')
          await exited
        },
        freeze () { child.kill('SIGSTOP') },
        thaw () { child.kill('SIGCONT') },
        async restart () {
          // The port may linger a moment after a crash.
          await sleep(50)
          child = await launch(name, args)
        },
      }
    },
    stop,
  }
}

// The port a server's arguments name: `--port N`, or a Sentinel's `port N` in its configuration file.
function portOf (args: string[], fallback: number): number {
  const flag = args.indexOf('--port')
  if (flag >= 0) return Number(args[flag + 1])
  const file = args[0] ?? ''
  const fromName = /sentinel-(\d+)\.conf$/.exec(file)?.[1]
  return fromName === undefined ? fallback : Number(fromName)
}

/**
 * A loopback port free now, from a range of its own (so that tap's parallel files, each with its own
 * topology, rarely meet), with `alsoFree` above it free too (a cluster node's bus port).
 */
export async function freePort (alsoFree?: number): Promise<number> {
  for (;;) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from))
    if (await isFree(port) && (alsoFree === undefined || await isFree(port + alsoFree))) return port
  }
}

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
