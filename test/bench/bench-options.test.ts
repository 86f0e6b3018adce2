import t from 'tap'
import { BenchUsageError, parseBenchOptions } from './bench-options.js'

t.test('a full run by default: 5 rounds of 5 s, 100,000 tenants, no JSON', async (t) => {
  t.match(parseBenchOptions([]), { rounds: 5, durationSeconds: 5, tenants: 100_000, jsonFile: undefined, quick: false })
})

t.test('--quick is one short round and a small fill; flags given with it still win', async (t) => {
  const quick = parseBenchOptions(['--quick'])
  t.match(quick, { rounds: 1, tenants: 2_000, quick: true })
  t.ok(quick.durationSeconds <= 2, 'runs of a second or two')
  t.match(parseBenchOptions(['--quick', '--rounds', '3', '--duration', '0.5', '--tenants', '10']), { rounds: 3, durationSeconds: 0.5, tenants: 10 })
  t.equal(parseBenchOptions(['--json', 'out.json']).jsonFile, 'out.json')
})

t.test('a flag that is not a positive number is refused with its name', async (t) => {
  for (const [flag, value] of [['--rounds', '0'], ['--rounds', '1.5'], ['--duration', 'abc'], ['--duration', ''], ['--tenants', '-5']]) {
    const arg = `${flag}=${value}`
    const args = [arg]
    t.throws(() => parseBenchOptions(args), new BenchUsageError(), arg)
    t.throws(() => parseBenchOptions(args), { message: new RegExp(`^${flag} `) })
  }
  t.throws(() => parseBenchOptions(['--rounds']), new BenchUsageError(), 'a flag without its value')
  t.throws(() => parseBenchOptions(['--connections', '5']), { name: 'BenchUsageError', message: /--connections/ }, 'an unknown flag')
})
