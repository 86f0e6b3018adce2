import t from 'tap'
import { startTopology } from '../support/redis-topologies.js'
import { testTopology } from './topology-scenarios.js'

// A three-master Redis Cluster of the file's own; crashed and frozen means every master at once.
t.setTimeout(240_000)
testTopology(t, await startTopology(t, 'cluster'), 'Cluster')
