import t from 'tap'
import { Redis } from 'ioredis'
import { startPrivateRedis, stopServer } from './bench-processes.js'
import { connectRedisCommandCounter, totalCommandsProcessed } from './redis-commands.js'

t.test('reads total_commands_processed from INFO stats', async (t) => {
  t.equal(totalCommandsProcessed('# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:4711\r\ninstantaneous_ops_per_sec:0\r\n'), 4711)
  t.throws(() => totalCommandsProcessed('# Stats\r\n'), /total_commands_processed/)
})

const server = await startPrivateRedis()
t.teardown(() => stopServer(server))

t.test('on a Redis of its own, counts exactly the commands another client ran', { skip: server === undefined && 'no redis-server on the PATH' }, async (t) => {
  if (server === undefined) return
  const counter = await connectRedisCommandCounter(server.origin)
  t.ok(counter, 'connected')
  if (counter === undefined) return
  t.teardown(() => counter.close())
  const client = new Redis(server.origin)
  t.teardown(() => client.disconnect())
  await client.ping()
  const before = await counter.read()
  await client.set('k', '1')
  await client.incr('k')
  await client.get('k')
  const after = await counter.read()
  t.equal(counter.between(before, after), 3)
  t.equal(counter.between(after, await counter.read()), 0, 'its own INFO is left out')
})

t.test('no counter when nothing answers', async (t) => {
  t.equal(await connectRedisCommandCounter('redis://127.0.0.1:1'), undefined)
})
