import t from 'tap'
import {
  countRedisCommands,
  cpuRatioByRound,
  HitRows,
  judge,
  steadySpreadMb,
  Targets,
  type BenchResults,
  type HitRow,
  type HitRowName,
  type Verdict,
} from './bench-verdicts.js'
import { renderReport } from './bench-report.js'

function hit (target: HitRowName, cpuMicrosPerRequest: number, p99Ms: number): HitRow {
  return {
    target,
    cpuMicrosPerRequest,
    cpuMicrosPerRequestByRound: [cpuMicrosPerRequest],
    efficiency: 30 / cpuMicrosPerRequest,
    requestsPerSecond: 1,
    coreBusy: 1,
    coreBusyAtFixedRate: 0.5,
    hostStealAtSaturation: 0,
    hostStealAtFixedRate: 0,
    p50Ms: 1,
    p99Ms,
    non2xx: 0,
    errors: 0,
  }
}

// Every target met, each by a margin; a test changes one figure and reads one verdict.
function meetingEveryTarget (): BenchResults {
  return {
    fixedRatePerSecond: 10_000,
    hits: [
      hit(HitRows.bare, 30, 2),
      hit(HitRows.conventional, 45, 3),
      hit(HitRows.apiKey, 40, 2.5),
      hit(HitRows.jwt, 42, 2.5),
      hit(HitRows.redis, 42, 2.9),
    ],
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

// A row that cost `cpu` in every round.
function withCpu (results: BenchResults, name: HitRowName, cpu: number): BenchResults {
  return withHit(results, name, { cpuMicrosPerRequest: cpu, cpuMicrosPerRequestByRound: [cpu] })
}

t.test('one verdict per target, in order, all PASS when every figure is within its target', async (t) => {
  const verdicts = judge(meetingEveryTarget())
  t.same(verdicts.map((verdict) => verdict.id), Object.values(Targets).map((target) => target.id))
  t.same(verdicts.filter((verdict) => verdict.status !== 'PASS'), [])
})

t.test('an API-key hit may cost as much CPU as the conventional build, not more', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withCpu(results, HitRows.apiKey, 45)), Targets.conventionalCost.id), 'PASS')
  t.equal(statusOf(judge(withCpu(results, HitRows.apiKey, 45.1)), Targets.conventionalCost.id), 'MISS')
  const verdict = judge(withCpu(results, HitRows.conventional, 20)).find((each) => each.id === Targets.conventionalCost.id)
  t.match(verdict, { status: 'MISS', measured: '2.00× the conventional build\'s CPU per hit' })
})

t.test('efficiency: 0.65 of the bare route passes, just under misses', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withHit(results, HitRows.apiKey, { efficiency: 0.65 })), Targets.hitEfficiency.id), 'PASS')
  t.equal(statusOf(judge(withHit(results, HitRows.apiKey, { efficiency: 0.649 })), Targets.hitEfficiency.id), 'MISS')
})

t.test('Redis mode may cost up to 10 % more CPU per hit than in-process, and any less', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withCpu(results, HitRows.redis, 44)), Targets.redisCost.id), 'PASS', '1.10x')
  t.equal(statusOf(judge(withCpu(results, HitRows.redis, 44.1)), Targets.redisCost.id), 'MISS')
  t.equal(statusOf(judge(withCpu(results, HitRows.redis, 30)), Targets.redisCost.id), 'PASS', 'cheaper')
})

t.test('CPU ratios pair the rows round by round: a swing of the host between rounds moves both rows of a round', async (t) => {
  const results = withHit(meetingEveryTarget(), HitRows.conventional, { cpuMicrosPerRequest: 50, cpuMicrosPerRequestByRound: [50, 50, 100] })
  // The API key costs 0.9 of the conventional build in two rounds of three; its second round ran while the
  // host was busy. The ratio of the medians (90 over 50) would say 1.8.
  const swinging = withHit(results, HitRows.apiKey, { cpuMicrosPerRequest: 90, cpuMicrosPerRequestByRound: [45, 90, 90] })
  const verdict = judge(swinging).find((each) => each.id === Targets.conventionalCost.id)
  t.match(verdict, { status: 'PASS', measured: '0.90× the conventional build\'s CPU per hit' })
  t.equal(cpuRatioByRound([40, 60, 200], [20, 30, 50]), 2)
  t.ok(Number.isNaN(cpuRatioByRound([40], [])), 'a round the base lacks is not a ratio')
})

t.test('p99 at the fixed rate is compared with the bare route\'s p99 in the same run, for each service row', async (t) => {
  const results = meetingEveryTarget()
  t.equal(statusOf(judge(withHit(results, HitRows.apiKey, { p99Ms: 4 })), Targets.p99ApiKey.id), 'PASS', '2x')
  t.equal(statusOf(judge(withHit(results, HitRows.jwt, { p99Ms: 4.1 })), Targets.p99Jwt.id), 'MISS')
  const slowBare = withHit(withHit(results, HitRows.bare, { p99Ms: 10 }), HitRows.redis, { p99Ms: 19 })
  t.equal(statusOf(judge(slowBare), Targets.p99Redis.id), 'PASS', 'relative to the bare route, not absolute')
  const slowConventional = judge(withHit(results, HitRows.conventional, { p99Ms: 100 }))
  t.same(slowConventional.filter((verdict) => verdict.status !== 'PASS'), [], 'the conventional build\'s p99 is reported, not judged')
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
  for (const target of [Targets.redisCommands, Targets.redisCost, Targets.p99Redis]) t.equal(statusOf(verdicts, target.id), 'SKIP', target.id)
  t.equal(statusOf(verdicts, Targets.hitEfficiency.id), 'PASS')
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
  const verdicts = judge(withCpu(withHit(results, HitRows.apiKey, { efficiency: Number.NaN }), HitRows.conventional, Number.NaN))
  t.equal(statusOf(verdicts, Targets.hitEfficiency.id), 'MISS')
  t.equal(statusOf(verdicts, Targets.conventionalCost.id), 'MISS')
})

t.test('the report warns of the rows whose server waited for the load generator, and only of those', async (t) => {
  const run = { machine: 'machine: test', method: 'method: test' }
  const saturated = meetingEveryTarget()
  t.notMatch(renderReport(run, saturated, judge(saturated)), /WARNING: not saturated/)
  const waiting = withHit(withHit(saturated, HitRows.bare, { coreBusy: 0.77 }), HitRows.jwt, { coreBusy: 0.89 })
  const report = renderReport(run, waiting, judge(waiting))
  t.match(report, `WARNING: not saturated (its core busy under 0.9 of the time, the load generator set the pace): ${HitRows.bare} (0.77), ${HitRows.jwt} (0.89);`)
  t.notMatch(report, new RegExp(`${HitRows.apiKey} \\(`), 'a saturated row is not named')
})

t.test('the report gives each row\'s core busy at saturation and at the fixed rate, and warns of the rows full at the fixed rate', async (t) => {
  const run = { machine: 'machine: test', method: 'method: test' }
  t.notMatch(renderReport(run, meetingEveryTarget(), judge(meetingEveryTarget())), /WARNING: at the fixed rate/)
  const full = withHit(meetingEveryTarget(), HitRows.redis, { coreBusy: 0.96, coreBusyAtFixedRate: 0.93 })
  const report = renderReport(run, full, judge(full))
  t.match(report, '| core busy (saturation / fixed rate) |')
  const redisLine = report.split('\n').find((line) => line.startsWith(`| ${HitRows.redis} `)) ?? ''
  t.match(redisLine, '| 0.96 / 0.93 ')
  t.match(report, `WARNING: at the fixed rate, core busy 0.9 or more of the time (answers queue; p99 is the queue's): ${HitRows.redis} (0.93)\n`)
})

t.test('the report gives the share of time the host took, at saturation and at the fixed rate', async (t) => {
  const run = { machine: 'machine: test', method: 'method: test' }
  const stolen = withHit(meetingEveryTarget(), HitRows.apiKey, { hostStealAtSaturation: 0.004, hostStealAtFixedRate: 0.1234 })
  const report = renderReport(run, stolen, judge(stolen))
  t.match(report, '| host steal % (server core at saturation / every core at the fixed rate) |')
  const apiKeyLine = report.split('\n').find((line) => line.startsWith(`| ${HitRows.apiKey} `)) ?? ''
  t.match(apiKeyLine, '| 0.4 / 12.3 ')
})
