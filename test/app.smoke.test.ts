import t from 'tap'
import { buildTestApp, phonesUrl, startSimulator, testConfig } from './helper.js'

t.test('a demo tenant answers 200, first MISS then HIT', async (t) => {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  const first = await app.inject(phonesUrl('demo-shop'))
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-cache'], 'MISS')
  const second = await app.inject(phonesUrl('demo-shop'))
  t.equal(second.headers['x-cache'], 'HIT')
  t.equal(simulator.calls, 1)
})
