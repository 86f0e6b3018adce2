import t from 'tap'
import {
  countRedisCommands,
  HitRows,
  judge,
  steadySpreadMb,
  Targets,
  type BenchResults,
  type HitRow,
  type HitRowName,
  type Verdict,
} from './bench-verdicts.js'

function hit (target: HitRowName, cpuMicrosPerRequest: number, p99Ms: number): HitRow {
  return { target, cpuMicrosPerRequest, efficiency: 30 / cpuMicrosPerRequest, requestsPerSecond: 1, p50Ms: 1, p99Ms, non2xx: 0, errors: 0 }
}

// Every target met, each by a margin; a test changes one figure and reads one verdict.
function meetingEveryTarget (): BenchResults {
  return {
    fixedRatePerSecond: 10_000,
    hits: [hit(HitRows.bare, 30, 2), hit(HitRows.apiKey, 33, 2.5), hit(HitRows.jwt, 32, 2.5), hit(HitRows.redis, 34, 2.9)],
    redisCommands: countRedisCommands({ commands: 50, hits: 100_000, runSeconds: 25, idleCommands: 0, idleSeconds: 5, serverCpuMicros: 0 }, true, 'own'),
    miss: {
      ratePerSecond: 100,
      p50Ms: 21.4,
      p99Ms: 23,
      upstreamP50Ms: 20.9,
      upstreamP99Ms: 22,
      overheadP50Ms: 0.5,
      requests: 500,
      upstreamCalls: 500,
      non2xx: 0,
      errors: 0,
    },
    memory: {
      tenants: 100_000,
      memoryLimitMb: 256,
      non2xx: 0,
      errors: 0,
      samples: [
        { pass: 0, tenants: 0, rssMb: 60 },
        { pass: 1, tenants: 50_000, rssMb: 120 },
        { pass: 1, tenants: 100_000, rssMb: 140 },
        { pass: 2, tenants: 50_000, rssMb: 143 },
        { pass: 2, tenants: 100_000, rssMb: 141 },
      ],
    },
  }
}

function statusOf (verdicts: Verdict[], id: string): string | undefined {
  return verdicts.find((verdict) => verdict.id === id)?.status
}

function withHit (results: BenchResults, name: HitRowName, change: Partial<HitRow>): BenchResults {
  return { ...results, hits: results.hits.map((row) => row.target === name ? { ...row, ...change } : row) }
}

t.test('one verdict per target, in order, all PASS when every figure is within its target', async (t) => {
  const verdicts = judge(meetingEveryTarget())
  t.same(verdicts.map((verdict) => verdict.id), Object.values(Targets).map((target) => target.id))
  t.same(verdicts.filter((verdict) => verdict.status !== 'PASS'), [])
})

t.test('efficiency: 0.85 passes, just under misses, for the in-process and the Redis row alike', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withHit(results, HitRows.apiKey, { efficiency: 0.85 })), Targets.hitEfficiency.id), 'PASS')
  t.equal(statusOf(judge(withHit(results, HitRows.apiKey, { efficiency: 0.849 })), Targets.hitEfficiency.id), 'MISS')
  t.equal(statusOf(judge(withHit(results, HitRows.redis, { efficiency: 0.5 })), Targets.redisEfficiency.id), 'MISS')
})

t.test('a repeated JWT may cost up to the noise allowance above the API key, not more', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withHit(results, HitRows.jwt, { cpuMicrosPerRequest: 33 * 1.05 })), Targets.jwtCost.id), 'PASS')
  t.equal(statusOf(judge(withHit(results, HitRows.jwt, { cpuMicrosPerRequest: 33 * 1.06 })), Targets.jwtCost.id), 'MISS')
})

t.test('p99 at the fixed rate is compared with the bare route\'s p99 in the same run', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withHit(results, HitRows.apiKey, { p99Ms: 3 })), Targets.p99ApiKey.id), 'PASS', '1.5x')
  t.equal(statusOf(judge(withHit(results, HitRows.jwt, { p99Ms: 3.1 })), Targets.p99Jwt.id), 'MISS')
  const slowBare = withHit(withHit(results, HitRows.bare, { p99Ms: 10 }), HitRows.redis, { p99Ms: 14 })
  t.equal(statusOf(judge(slowBare), Targets.p99Redis.id), 'PASS', 'relative to the bare route, not absolute')
})

t.test('Redis commands per hit: at most 0.01', async (t) => {
  const results = meetingEveryTarget()
  const count = (commands: number) => countRedisCommands({ commands, hits: 10_000, runSeconds: 5, idleCommands: 0, idleSeconds: 1, serverCpuMicros: 0 }, false, 'shared')
  t.equal(statusOf(judge({ ...results, redisCommands: count(100) }), Targets.redisCommands.id), 'PASS')
  t.equal(statusOf(judge({ ...results, redisCommands: count(101) }), Targets.redisCommands.id), 'MISS')
  t.equal(count(20_000).commandsPerHit, 2)
})

t.test('a Redis count is polluted when the idle rate would explain a quarter of the allowance', async (t) => {
  // 10,000 hits allow 100 commands; 5 s of runs at 5 commands/s idle is 25 of them.
  const tally = { commands: 0, hits: 10_000, runSeconds: 5, idleSeconds: 2, serverCpuMicros: 0 }
  t.equal(countRedisCommands({ ...tally, idleCommands: 10 }, false, 'shared').polluted, true)
  t.equal(countRedisCommands({ ...tally, idleCommands: 9 }, false, 'shared').polluted, false)
  t.equal(countRedisCommands({ ...tally, idleCommands: 9 }, false, 'shared').idleCommandsPerSecond, 4.5)
})

t.test('the Redis server\'s own CPU per hit is reported only for the bench\'s own Redis', async (t) => {
  const tally = { commands: 0, hits: 1000, runSeconds: 5, idleCommands: 0, idleSeconds: 1, serverCpuMicros: 20_000 }
  t.equal(countRedisCommands(tally, true, 'own').serverCpuMicrosPerHit, 20)
  t.equal(countRedisCommands(tally, false, 'shared').serverCpuMicrosPerHit, undefined)
})

t.test('without a Redis the Redis targets are skipped, the others still judged', async (t) => {
  const results = meetingEveryTarget()
  const verdicts = judge({ ...results, redisCommands: undefined, hits: results.hits.filter((row) => row.target !== HitRows.redis) })
  for (const target of [Targets.redisEfficiency, Targets.redisCommands, Targets.p99Redis]) t.equal(statusOf(verdicts, target.id), 'SKIP', target.id)
  t.equal(statusOf(verdicts, Targets.hitEfficiency.id), 'PASS')
})

t.test('miss: at most 1 ms of p50 over the upstream\'s own p50', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge({ ...results, miss: { ...results.miss, overheadP50Ms: 1 } }), Targets.missOverhead.id), 'PASS')
  t.equal(statusOf(judge({ ...results, miss: { ...results.miss, overheadP50Ms: 1.01 } }), Targets.missOverhead.id), 'MISS')
})

t.test('memory: every sample within 160 MB, and steady from the end of the first pass on', async (t) => {
  const results = meetingEveryTarget()
  const passes = [0, 1, 1, 2, 2]
  const withSamples = (rssMb: number[]) => ({
    ...results,
    memory: { ...results.memory, samples: rssMb.map((mb, index) => ({ pass: passes[index] ?? 2, tenants: index, rssMb: mb })) },
  })
  t.equal(statusOf(judge(withSamples([60, 100, 161, 150, 150])), Targets.rssBound.id), 'MISS', 'a peak counts')
  t.equal(statusOf(judge(withSamples([60, 100, 150, 158, 151])), Targets.rssSteady.id), 'PASS', '8 MB apart')
  t.equal(statusOf(judge(withSamples([60, 100, 150, 155, 159])), Targets.rssSteady.id), 'MISS', 'still growing')
  t.equal(statusOf(judge(withSamples([60, 100, 150, 150, 150])), Targets.rssSteady.id), 'PASS')
})

t.test('steadySpreadMb reads the last sample of the first pass and every later one', async (t) => {
  t.equal(steadySpreadMb([
    { pass: 0, tenants: 0, rssMb: 10 },
    { pass: 1, tenants: 1, rssMb: 90 },
    { pass: 1, tenants: 2, rssMb: 100 },
    { pass: 2, tenants: 1, rssMb: 104 },
    { pass: 2, tenants: 2, rssMb: 101 },
  ]), 4)
  t.ok(Number.isNaN(steadySpreadMb([{ pass: 0, tenants: 0, rssMb: 10 }])), 'no first pass: no spread')
})

t.test('a figure that could not be measured is a MISS, never a PASS', async (t) => {
  const results = meetingEveryTarget()
  const verdicts = judge({ ...withHit(results, HitRows.apiKey, { efficiency: Number.NaN }), memory: { ...results.memory, samples: [] } })
  t.equal(statusOf(verdicts, Targets.hitEfficiency.id), 'MISS')
  t.equal(statusOf(verdicts, Targets.rssBound.id), 'MISS')
  t.equal(statusOf(verdicts, Targets.rssSteady.id), 'MISS')
})
