/**
 * The miss row: every request a tenant the BFF has not cached (so each one reads the cache, calls NxCloud,
 * checks, shapes and stores the list), the simulator answering after MISS_UPSTREAM_LATENCY_MS, at a modest
 * fixed rate the upstream bulkhead never sheds. Beside it, in the same rounds, the simulator asked directly:
 * the upstream's latency as a client sees it (timer, HTTP and signature check included), which is what
 * the BFF's overhead is measured over.
 */
import { PHONE_LIST_PATH } from '../../src/nxcloud/nxcloud-client.js'
import { signRequest } from '../../src/nxcloud/sign-request.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET, generatedTenantAppkey } from '../simulator/demo-tenants.js'
import type { BenchOptions } from './bench-options.js'
import { CONNECTIONS, progress, type Fixture } from './bench-fixture.js'
import { startBff, stopServer } from './bench-processes.js'
import type { MissRow } from './bench-verdicts.js'
import { median, offerFixedRate, type LatencyResult, type LoadRequest } from './http-load.js'

export interface MissRound {
  round: number
  upstream: LatencyResult
  bff: LatencyResult
  upstreamCalls: number
}

export async function measureMiss (options: BenchOptions, fixture: Fixture): Promise<{ row: MissRow, rounds: MissRound[] }> {
  const upstream = fixture.distantSimulator
  const server = await startBff({ ...fixture.bffEnv, NXCLOUD_BASE_URL: upstream.url })
  try {
    let nextTenant = 0
    const throughBff = (): LoadRequest => ({ path: `/tenants/${generatedTenantAppkey(nextTenant++)}/phones`, headers: fixture.apiKey })
    const direct = (): LoadRequest => signedPhoneListRequest(generatedTenantAppkey(nextTenant++))
    const load = (seconds: number, requestFor: () => LoadRequest) =>
      ({ ratePerSecond: options.missRatePerSecond, seconds, connections: CONNECTIONS, requestFor })
    await offerFixedRate(server.origin, load(options.warmupSeconds, throughBff))
    await offerFixedRate(upstream.url, load(options.warmupSeconds, direct))
    const rounds: MissRound[] = []
    for (let round = 1; round <= options.rounds; round++) {
      const upstreamAlone = await offerFixedRate(upstream.url, load(options.durationSeconds, direct))
      upstream.resetCalls()
      const bff = await offerFixedRate(server.origin, load(options.durationSeconds, throughBff))
      rounds.push({ round, upstream: upstreamAlone, bff, upstreamCalls: upstream.calls })
      progress(`round ${round}, miss at ${options.missRatePerSecond} req/s: p50 ${bff.p50Ms.toFixed(2)} ms ` +
        `(upstream alone ${upstreamAlone.p50Ms.toFixed(2)} ms)`)
    }
    return { row: missRow(options.missRatePerSecond, rounds), rounds }
  } finally {
    await stopServer(server)
  }
}

function missRow (ratePerSecond: number, rounds: MissRound[]): MissRow {
  const sum = (of: (round: MissRound) => number) => rounds.reduce((total, round) => total + of(round), 0)
  return {
    ratePerSecond,
    p50Ms: median(rounds.map((round) => round.bff.p50Ms)),
    p99Ms: median(rounds.map((round) => round.bff.p99Ms)),
    upstreamP50Ms: median(rounds.map((round) => round.upstream.p50Ms)),
    upstreamP99Ms: median(rounds.map((round) => round.upstream.p99Ms)),
    overheadP50Ms: median(rounds.map((round) => round.bff.p50Ms - round.upstream.p50Ms)),
    requests: sum((round) => round.bff.answered + round.bff.non2xx + round.bff.errors),
    upstreamCalls: sum((round) => round.upstreamCalls),
    non2xx: sum((round) => round.bff.non2xx + round.upstream.non2xx),
    errors: sum((round) => round.bff.errors + round.upstream.errors),
  }
}

// The simulator asked as the BFF asks it: signed, with a fresh timestamp.
function signedPhoneListRequest (appkey: string): LoadRequest {
  const body = JSON.stringify({ appkey })
  const signed = { accessKey: DEMO_ACCESS_KEY, action: 'phoneList', bizType: '2', ts: String(Date.now()) }
  const sign = signRequest({ ...signed, body, accessSecret: DEMO_ACCESS_SECRET })
  return { method: 'POST', path: PHONE_LIST_PATH, headers: { ...signed, sign, 'content-type': 'application/json' }, body }
}
