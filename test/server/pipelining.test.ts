import t from 'tap'
import { request } from 'undici'
import { startSimulator } from '../helper.js'
import { FLOODED_SERVER_ENV, floodWithUnreadPipelinedRequests } from './pipelining-flood.js'
import { startServerProcess } from './server-process.js'

// The bound this test holds the server to: one client flooding pipelined requests it never reads.
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024
const MIB = 2 ** 20

t.test('a client pipelining requests it never reads neither grows memory without bound nor keeps another client from being served', async (t) => {
  const simulator = await startSimulator(t)
  const { child, origin } = await startServerProcess(t, simulator, FLOODED_SERVER_ENV)
  if (child.pid === undefined) throw new Error('the server has no pid')

  const flood = await floodWithUnreadPipelinedRequests({ origin, pid: child.pid })
  const growth = flood.peakBytes - flood.baselineBytes
  // How fast the other client was served is a figure of this machine's load: test/bench/edge-figures.ts prints it.
  t.comment(`RSS ${(flood.baselineBytes / MIB).toFixed(1)} MiB before, peak ${(flood.peakBytes / MIB).toFixed(1)} MiB: ` +
    `+${(growth / MIB).toFixed(1)} MiB for ${flood.floodRequests} pipelined requests; the other client: ${flood.statuses.length} answers; ` +
    `the flooding connection closed by the server after ${flood.closedAfterMs.toFixed(0)} ms`)
  t.ok(growth < RSS_GROWTH_BOUND_BYTES, `the server's RSS grew less than ${RSS_GROWTH_BOUND_BYTES / MIB} MiB`)
  t.ok(flood.statuses.length > 0, 'the other client was served during the flood')
  t.ok(flood.statuses.every((status) => status === 200), 'and got every answer')
  t.pass('the server closed the flooding connection (request cap or connection timeout)')

  const after = await request(`${origin}/healthz`)
  t.equal(after.statusCode, 200, 'and goes on serving')
  await after.body.dump()
})
