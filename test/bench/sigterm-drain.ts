/**
 * `npm run build && npx tsx test/bench/sigterm-drain.ts`: issue 15's shutdown figure. Against the compiled
 * service (Redis mode, API keys on), in processes of its own: many clients keep their connections alive
 * and send phone-list requests back to back; SIGTERM comes mid-load, with the default drain (5 s), and
 * the clients go on until the process has exited. Prints how every request sent to the terminating
 * instance ended: answered (keeping or closing its connection), reset, or closed without an answer, and
 * how the connections refused were. Two ways the clients reach the service:
 * - behind a balancer, as in Kubernetes: new connections go to the terminating instance until a
 *   propagation delay after its readiness failed, then to a replacement; the connections already open
 *   stay pinned to it (an L4 balancer such as kube-proxy) until it closes them;
 * - without one: every new connection goes to the terminating instance until it has exited.
 * Figures are printed, never asserted: they depend on the machine.
 */
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { request as httpRequest } from 'undici'
import { describeKeepAliveLoad, resetsIn, sentRequests, startKeepAliveLoad, type KeepAliveLoadStats } from '../server/keep-alive-load.js'
import { progress, startFixture, startRedisBff, type Fixture } from './bench-fixture.js'
import { stopServer, type BenchServer } from './bench-processes.js'

export interface SigtermDrainOptions {
  connections: number
  /** Load before SIGTERM. */
  warmUpMs: number
  /** The service's SHUTDOWN_DRAIN_DELAY_MS (its default: 5000). */
  drainDelayMs: number
  /** Behind a balancer: how long after the readiness failed new connections still reach the terminating instance. */
  propagationMs: number | undefined
}

export interface SigtermDrainFigures {
  /** The requests sent to the terminating instance, warm-up included. */
  whole: KeepAliveLoadStats
  /** Those sent after SIGTERM. */
  afterSigterm: KeepAliveLoadStats
  exitCode: number | null
  exitAfterMs: number
  unreadyAfterMs: number
}

export const ISSUE_15_BEHIND_A_BALANCER: SigtermDrainOptions = { connections: 64, warmUpMs: 5_000, drainDelayMs: 5_000, propagationMs: 1_000 }
export const ISSUE_15_WITHOUT_A_BALANCER: SigtermDrainOptions = { ...ISSUE_15_BEHIND_A_BALANCER, propagationMs: undefined }

const READINESS_INTERVAL_MS = 50

export async function measureSigtermDrain (fixture: Fixture, options: SigtermDrainOptions): Promise<SigtermDrainFigures> {
  const env = { SHUTDOWN_DRAIN_DELAY_MS: String(options.drainDelayMs) }
  const terminating = await startRedisBff(fixture, env)
  const replacement = options.propagationMs === undefined ? undefined : await startRedisBff(fixture, env)
  const portOf = (server: BenchServer) => Number(new URL(server.origin).port)
  let routedTo = portOf(terminating)
  const request = `GET /tenants/demo-shop/phones HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${fixture.apiKey['x-api-key']}\r\n\r\n`
  const load = startKeepAliveLoad({ request, connections: options.connections, nextPort: () => routedTo })
  try {
    await sleep(options.warmUpMs)
    const whole = structuredClone(load.statsOf(portOf(terminating)))
    load.restartCounts()
    const sigtermAt = Date.now()
    const exited = once(terminating.process, 'exit') as Promise<[number | null]>
    terminating.process.kill('SIGTERM')
    await waitForUnreadiness(terminating.origin)
    const unreadyAfterMs = Date.now() - sigtermAt
    load.mark()
    if (replacement !== undefined && options.propagationMs !== undefined) {
      await sleep(options.propagationMs)
      routedTo = portOf(replacement)
    }
    const [exitCode] = await exited
    const exitAfterMs = Date.now() - sigtermAt
    await load.stop()
    const afterSigterm = load.statsOf(portOf(terminating))
    return { whole: add(whole, afterSigterm), afterSigterm, exitCode, exitAfterMs, unreadyAfterMs }
  } finally {
    await load.stop()
    if (terminating.process.exitCode === null) terminating.process.kill('SIGKILL')
    await stopServer(replacement)
  }
}

// As the kubelet probes: a connection of its own each time.
async function waitForUnreadiness (origin: string): Promise<void> {
  for (;;) {
    try {
      const response = await httpRequest(`${origin}/readyz`, { reset: true })
      await response.body.dump()
      if (response.statusCode === 503) return
    } catch {
      return
    }
    await sleep(READINESS_INTERVAL_MS)
  }
}

function add (one: KeepAliveLoadStats, other: KeepAliveLoadStats): KeepAliveLoadStats {
  const sum = structuredClone(one)
  for (const kind of ['fresh', 'kept-alive'] as const) {
    for (const [outcome, count] of Object.entries(other.requests[kind]) as Array<[keyof KeepAliveLoadStats['requests']['fresh'], number]>) {
      sum.requests[kind][outcome] += count
    }
  }
  sum.refusedConnections += other.refusedConnections
  sum.closes.ended += other.closes.ended
  sum.closes.reset += other.closes.reset
  sum.keptAliveAfterMark += other.keptAliveAfterMark
  for (const [status, count] of other.statuses) sum.statuses.set(status, (sum.statuses.get(status) ?? 0) + count)
  return sum
}

export function describeSigtermDrain (options: SigtermDrainOptions, figures: SigtermDrainFigures): string {
  const how = options.propagationMs === undefined
    ? 'without a balancer (new connections to the terminating instance until it exits)'
    : `behind a balancer (new connections to the terminating instance until ${options.propagationMs} ms after its readiness failed)`
  return `SIGTERM under ${options.connections} kept-alive connections, ${how}, drain ${options.drainDelayMs} ms: ` +
    `readiness failed ${figures.unreadyAfterMs} ms after SIGTERM, exit ${figures.exitCode} after ${figures.exitAfterMs} ms. ` +
    `The terminating instance's connections carried ${sentRequests(figures.whole)} requests, ${resetsIn(figures.whole)} resets. ` +
    `After SIGTERM: ${describeKeepAliveLoad(figures.afterSigterm)}; answers keeping their connection once readiness had failed: ` +
    `${figures.afterSigterm.keptAliveAfterMark}`
}

async function main (): Promise<void> {
  const fixture = await startFixture()
  try {
    for (const options of [ISSUE_15_BEHIND_A_BALANCER, ISSUE_15_WITHOUT_A_BALANCER]) {
      progress(describeSigtermDrain(options, await measureSigtermDrain(fixture, options)))
    }
  } finally {
    await fixture.close()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
