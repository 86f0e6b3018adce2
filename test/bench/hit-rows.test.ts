import t from 'tap'
import { HitRows } from './bench-verdicts.js'
import { byRowAndRound, type SaturationRound } from './hit-rows.js'

const run = (target: SaturationRound['target'], round: number, requests: number, cpuMicrosPerRequest: number, requestsPerSecond: number): SaturationRound =>
  ({ target, round, processes: 1, requests, requestsPerSecond, non2xx: 0, errors: 1, cpuMicrosPerRequest, hostSteal: requests / 1e6 })

t.test('a row measured on two processes in a round counts as one run: CPU over all their requests', async (t) => {
  const merged = byRowAndRound([
    run(HitRows.bare, 1, 100_000, 20, 20_000),
    run(HitRows.apiKey, 1, 100_000, 30, 20_000),
    run(HitRows.apiKey, 1, 50_000, 40, 10_000),
    run(HitRows.apiKey, 2, 80_000, 35, 16_000),
  ])
  t.equal(merged.length, 3)
  t.match(merged[0], { target: HitRows.bare, round: 1, processes: 1, requests: 100_000, cpuMicrosPerRequest: 20, errors: 1 })
  const twins = merged[1]!
  t.match(twins, { target: HitRows.apiKey, round: 1, processes: 2, requests: 150_000, requestsPerSecond: 15_000, errors: 2 })
  // (100,000 × 30 + 50,000 × 40) / 150,000: the processes weighed by what they answered.
  t.equal(twins.cpuMicrosPerRequest.toFixed(4), (5_000_000 / 150_000).toFixed(4))
  t.equal(twins.hostSteal.toFixed(3), '0.075')
  t.match(merged[2], { target: HitRows.apiKey, round: 2, processes: 1, requests: 80_000 })
})
