import t from 'tap'
import { cpuTimesFromStat, readCpuTimes, stealShareBetween } from './host-steal.js'

const STAT = [
  'cpu  279376 0 80708 339242 354 0 37335 12127 0 0',
  'cpu0 124068 0 40519 183907 71 0 16006 7390 0 0',
  'cpu1 155307 0 40189 155334 282 0 21329 4737 0 0',
  'intr 123 4 5',
].join('\n')

t.test('the steal and total ticks of one CPU, or of all, are read from their /proc/stat line', async (t) => {
  t.same(cpuTimesFromStat(STAT, 1), { steal: 4737, total: 155307 + 40189 + 155334 + 282 + 21329 + 4737 })
  t.same(cpuTimesFromStat(STAT, undefined), { steal: 12127, total: 279376 + 80708 + 339242 + 354 + 37335 + 12127 })
  t.throws(() => cpuTimesFromStat(STAT, 2), /no readable cpu2 line/)
})

t.test('the stolen share is the steal ticks over every tick between two readings', async (t) => {
  t.equal(stealShareBetween({ steal: 10, total: 1000 }, { steal: 35, total: 1100 }), 0.25)
  t.equal(stealShareBetween({ steal: 10, total: 1000 }, { steal: 10, total: 1000 }), 0)
})

t.test('this machine\'s /proc/stat reads', async (t) => {
  const times = readCpuTimes(undefined)
  t.ok(times.total > 0)
  t.ok(times.steal >= 0 && times.steal <= times.total)
})
