/**
 * `npm run outage [-- --topology sentinel --seconds 8]`: issue 16's experiment, as an operator would try it.
 * Per topology (a server, a Sentinel group, a cluster; all three by default) and per outage (crash: `kill
 * -9` of every server holding data, then started again empty; freeze: `kill -STOP`, then `kill -CONT`):
 * two instances of the compiled service (separate processes) on one Redis, 20 warm tenants, 200
 * requests/s spread over both, NxCloud answering in 20 ms; 5 s before the outage, the outage, 8 s after.
 * Prints, per phase, the answers by status, p50 and p99, and the NxCloud calls. Figures depend on the
 * machine: printed, never asserted (the tests in test/redis/ assert what does not).
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { startBff, stopServer, type BenchServer } from '../bench/bench-processes.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, generatedTenantAppkey } from '../simulator/demo-tenants.js'
import { startNxCloudSimulator } from '../simulator/nxcloud-simulator.js'
import { startTopology, type TopologyKind } from '../support/redis-topologies.js'
import { formatSummary, startSteadyLoad, summarise } from '../support/steady-load.js'

const INSTANCES = 2
const WARM_TENANTS = 20
const RATE_PER_SECOND = 200
const UPSTREAM_LATENCY_MS = 20
const BEFORE_MS = 5_000
const AFTER_MS = 8_000
const TOPOLOGIES: TopologyKind[] = ['standalone', 'sentinel', 'cluster']

const { values: args } = parseArgs({ options: { topology: { type: 'string' }, seconds: { type: 'string', default: '8' } } })
const outageMs = Number(args.seconds) * 1000
const topologies = args.topology === undefined ? TOPOLOGIES : TOPOLOGIES.filter((kind) => kind === args.topology)
if (topologies.length === 0 || !(outageMs > 0)) throw new Error(`--topology is one of ${TOPOLOGIES.join(', ')}; --seconds a positive number`)

for (const kind of topologies) {
  for (const outage of ['crash', 'freeze'] as const) await run(kind, outage)
}

async function run (kind: TopologyKind, outage: 'crash' | 'freeze'): Promise<void> {
  const teardowns: Array<() => unknown> = []
  try {
    const simulator = await startNxCloudSimulator({ accessKey: DEMO_ACCESS_KEY, accessSecret: DEMO_ACCESS_SECRET, latencyMs: UPSTREAM_LATENCY_MS })
    teardowns.push(() => simulator.close())
    const topology = await startTopology({ teardown: (fn) => { teardowns.push(fn) } }, kind)
    const env = {
      NXCLOUD_BASE_URL: simulator.url,
      NXCLOUD_ACCESS_KEY: DEMO_ACCESS_KEY,
      NXCLOUD_ACCESS_SECRET: DEMO_ACCESS_SECRET,
      NXCLOUD_ALLOW_DEMO_CREDENTIALS: 'true',
      AUTH_DISABLED: 'true',
      RATE_LIMIT_MAX: '1000000000',
      CACHE_KEY_PREFIX: `nxcloud-bff-outage:${randomUUID()}:`,
      SHUTDOWN_DRAIN_DELAY_MS: '0',
      LOG_LEVEL: 'warn',
      ...topology.env,
    }
    const servers: BenchServer[] = []
    for (let index = 0; index < INSTANCES; index++) servers.push(await startBff(env))
    teardowns.push(() => Promise.all(servers.map(stopServer)))
    const path = (index: number) => `/tenants/${generatedTenantAppkey(index % WARM_TENANTS)}/phones`
    for (const server of servers) {
      for (let index = 0; index < WARM_TENANTS; index++) await (await fetch(server.origin + path(index))).text()
    }
    const load = startSteadyLoad({ origins: () => servers.map((server) => server.origin), next: (index) => ({ path: path(index), kind: 'warm' }), ratePerSecond: RATE_PER_SECOND })
    teardowns.push(() => load.stop())
    const calls = [simulator.calls]
    await sleep(BEFORE_MS)
    calls.push(simulator.calls)
    const outageFromMs = load.now()
    if (outage === 'crash') await Promise.all(topology.servers.map((server) => server.crash()))
    else for (const server of topology.servers) server.freeze()
    await sleep(outageMs)
    calls.push(simulator.calls)
    const outageToMs = load.now()
    if (outage === 'crash') for (const server of topology.servers) await server.restart()
    else for (const server of topology.servers) server.thaw()
    await sleep(AFTER_MS)
    await load.stop()
    calls.push(simulator.calls)
    const [warm = 0, before = 0, during = 0, after = 0] = calls
    const label = `${kind} ${outage} ${outageMs / 1000} s`
    process.stdout.write([
      `${label}: ${INSTANCES} instances, ${WARM_TENANTS} warm tenants, ${RATE_PER_SECOND} requests/s, NxCloud ${UPSTREAM_LATENCY_MS} ms`,
      `  ${formatSummary('before', summarise(load.samples, 0, outageFromMs))}; NxCloud calls ${before - warm}`,
      `  ${formatSummary('during', summarise(load.samples, outageFromMs, outageToMs))}; NxCloud calls ${during - before}`,
      `  ${formatSummary('after', summarise(load.samples, outageToMs))}; NxCloud calls ${after - during}`,
      '',
    ].join('\n'))
  } finally {
    for (const teardown of teardowns.reverse()) await teardown()
  }
}
