import t from 'tap'
import { startTopology } from '../support/redis-topologies.js'
import { failoverUnderLoad, testTopology } from './topology-scenarios.js'

// A Sentinel group of the file's own (a master, a replica, three Sentinels); its failovers come last.
t.setTimeout(240_000)
const topology = await startTopology(t, 'sentinel')

testTopology(t, topology, 'Sentinel')
t.test('Sentinel: SENTINEL FAILOVER under load', (t) => failoverUnderLoad(t, topology, 'command'))
t.test('Sentinel: the master killed (-9) under load', (t) => failoverUnderLoad(t, topology, 'kill'))
