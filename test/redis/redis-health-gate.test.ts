import t from 'tap'
import type { Test } from 'tap'
import { pino } from 'pino'
import { createRedisClient, closeRedis, pingRedis } from '../../src/redis/redis-client.js'
import { RedisSkippedError, createRedisHealthGate } from '../../src/redis/redis-health-gate.js'
import { eventually } from '../support/eventually.js'
import { startTopology } from '../support/redis-topologies.js'

const COMMAND_TIMEOUT_MS = 250
const topology = await startTopology(t, 'standalone')
const [server] = topology.servers

async function openGate (t: Test) {
  const client = createRedisClient({ kind: 'standalone', url: topology.env['REDIS_URL'] ?? '', password: undefined, tls: false }, COMMAND_TIMEOUT_MS)
  client.on('error', () => {})
  const gate = createRedisHealthGate({ client, probe: () => pingRedis(client), log: pino({ level: 'silent' }) })
  t.teardown(async () => {
    gate.close()
    await closeRedis(client)
  })
  await eventually(() => client.status === 'ready', { what: 'the client to connect' })
  return { client, gate }
}

t.test('a frozen Redis: the first command times out and closes the gate; the next are not sent at all, until a probe answers', async (t) => {
  const { client, gate } = await openGate(t)
  t.equal(await gate.run(() => client.ping()), 'PONG')
  server?.freeze()
  t.teardown(() => server?.thaw())
  await t.rejects(gate.run(() => client.ping()), /timed out/, 'the first command waits out its timeout')
  t.equal(gate.available, false)
  let sent = 0
  for (let attempt = 0; attempt < 10; attempt++) {
    await t.rejects(gate.run(() => { sent++; return client.ping() }), RedisSkippedError)
  }
  t.equal(sent, 0, 'no command was sent while the gate was closed')
  server?.thaw()
  await eventually(() => gate.available, { what: 'a probe to reopen the gate' })
  t.equal(await gate.run(() => client.ping()), 'PONG')
})

t.test('a crashed Redis: the closed connection closes the gate at once; reconnecting reopens it', async (t) => {
  const { client, gate } = await openGate(t)
  await server?.crash()
  await eventually(() => !gate.available, { what: 'the gate to close with the connection' })
  await t.rejects(gate.run(() => client.ping()), RedisSkippedError)
  await server?.restart()
  await eventually(() => gate.available, { what: 'the reconnection to reopen the gate' })
  t.equal(await gate.run(() => client.ping()), 'PONG')
})
