import t from 'tap'
import { startTopology } from '../support/redis-topologies.js'
import { outageUnderLoad } from './topology-scenarios.js'

// A Redis server of the file's own, to crash and freeze (the shared one at 6379 is never touched); the
// other behaviours on a single server are the tests of test/cache, test/phones and test/plugins.
t.setTimeout(120_000)
const topology = await startTopology(t, 'standalone')

t.test('single server: Redis crashed under load', (t) => outageUnderLoad(t, topology, 'crash'))
t.test('single server: Redis frozen under load', (t) => outageUnderLoad(t, topology, 'freeze'))
