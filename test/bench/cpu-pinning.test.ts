import t from 'tap'
import { cpuPinningFor } from './cpu-pinning.js'

t.test('servers get the last core and the bench the others, when there are two cores or more', async (t) => {
  t.same(cpuPinningFor(2, true), { serverCpu: 1, benchCpus: '0' })
  t.same(cpuPinningFor(8, true), { serverCpu: 7, benchCpus: '0-6' })
})

t.test('nothing is pinned on one core or without taskset', async (t) => {
  t.equal(cpuPinningFor(1, true), undefined)
  t.equal(cpuPinningFor(4, false), undefined)
})
