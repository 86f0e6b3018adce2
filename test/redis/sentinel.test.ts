import t from 'tap'
import type { Redis } from 'ioredis'
import { closeRedis, createRedisClient, type RedisTopology } from '../../src/redis/redis-client.js'
import { eventually } from '../support/eventually.js'
import { SENTINEL_MASTER_NAME, startTopology, withClient, type RedisProcess, type SentinelTopology } from '../support/redis-topologies.js'
import { failoverUnderLoad, testTopology } from './topology-scenarios.js'

// A Sentinel group of the file's own (a master, a replica, three Sentinels); its failovers come last.
t.setTimeout(240_000)
const topology = await startTopology(t, 'sentinel')

testTopology(t, topology, 'Sentinel')
t.test('Sentinel: SENTINEL FAILOVER under load', (t) => failoverUnderLoad(t, topology, 'command'))
t.test('Sentinel: the master killed (-9) under load', (t) => failoverUnderLoad(t, topology, 'kill'))

t.test('Sentinel: a failover notice heard while the client asks a Sentinel for the master does not end the client', async (t) => {
  await topology.settle()
  let endedByIoredis = 0
  const client = createRedisClient(sentinelTopologyOf(topology), COMMAND_TIMEOUT_MS, () => { endedByIoredis++ }) as Redis
  client.on('error', () => {})
  t.teardown(() => closeRedis(client))
  await eventually(() => client.status === 'ready', { what: 'the client to reach the master' })
  // The client asked the first Sentinel, which answered, so asks it first again: frozen, it holds the next
  // reconnection in the middle of asking, while the two others fail the master over and announce it.
  const [asked, ...others] = topology.sentinels as [RedisProcess, ...RedisProcess[]]
  const announcer = others[0] as RedisProcess
  const detectors = await failoverSubscribers(announcer.port)
  const oldPort = await topology.masterPort()
  asked.freeze()
  t.teardown(() => { asked.thaw() })
  await topology.servers.find((server) => server.port === oldPort)?.crash()
  const newPort = await eventually(async () => {
    const port = await masterPortFrom(announcer.port)
    return port !== oldPort ? port : undefined
  }, { what: 'the other Sentinels to promote the replica' })
  // The client's failover detector heard the announcement: it unsubscribed, dropping the pending reconnection.
  await eventually(async () => await failoverSubscribers(announcer.port) < detectors, { what: 'the failover detector to hear +switch-master' })
  asked.thaw()

  await eventually(() => client.status === 'ready' && client.stream.remotePort === newPort, { what: 'the client to reach the new master' })
  t.equal(endedByIoredis, 1, 'ioredis had ended the client, and it was connected again')
  t.equal(await client.set('failover-probe', 'written'), 'OK', 'and it writes on the new master')
  await topology.servers.find((server) => server.port === oldPort)?.restart()
  await topology.settle()
})

const COMMAND_TIMEOUT_MS = 250

function sentinelTopologyOf (sentinels: SentinelTopology): RedisTopology {
  return {
    kind: 'sentinel',
    sentinels: sentinels.sentinels.map(({ port }) => ({ host: '127.0.0.1', port })),
    name: SENTINEL_MASTER_NAME,
    password: undefined,
    sentinelPassword: undefined,
    tls: false,
  }
}

async function masterPortFrom (port: number): Promise<number> {
  const [, masterPort] = await withClient(port, (sentinel) => sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME)) as [string, string]
  return Number(masterPort)
}

// A Sentinel has no PUBSUB command: its subscribed clients are those CLIENT LIST shows with a subscription.
async function failoverSubscribers (port: number): Promise<number> {
  const clients = await withClient(port, (sentinel) => sentinel.call('CLIENT', 'LIST')) as string
  return clients.split('\n').filter((line) => /\bsub=[1-9]/.test(line)).length
}
