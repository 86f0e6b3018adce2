import t from 'tap'
import type { Test } from 'tap'
import { pino } from 'pino'
import { createNxCloudClient, type NxCloudClient } from '../../src/nxcloud/nxcloud-client.js'
import { NxCloudError, type NxCloudFailureKind } from '../../src/nxcloud/nxcloud-error.js'
import { startSimulator } from '../helper.js'
import { DEMO_ACCESS_KEY, DEMO_ACCESS_SECRET } from '../simulator/demo-tenants.js'

const silentLog = pino({ level: 'silent' })
// A budget the calls meant to be answered keep on a busy machine too; only the slow tenant outlasts it.
const TIMEOUT_MS = 2_000

async function startClient (t: Test, maxAttempts = 1): Promise<NxCloudClient> {
  const simulator = await startSimulator(t)
  const client = createNxCloudClient({
    baseUrl: simulator.url,
    accessKey: DEMO_ACCESS_KEY,
    accessSecret: DEMO_ACCESS_SECRET,
    timeoutMs: TIMEOUT_MS,
    connections: 2,
    protection: { maxConcurrency: 2, maxQueue: 10, maxAttempts, breakerFailureRatio: 0.5, breakerMinCalls: 100, breakerWindowMs: 10_000, breakerOpenMs: 10_000 },
  })
  t.teardown(() => client.close())
  return client
}

async function failureOf (client: NxCloudClient, appkey: string): Promise<NxCloudError> {
  try {
    await client.fetchPhoneList(appkey, silentLog)
  } catch (error) {
    if (error instanceof NxCloudError) return error
    throw error
  }
  throw new Error(`${appkey} was answered with a list`)
}

t.test('the client answers in NxCloud\'s terms: each failure an NxCloudError with its kind and code', async (t) => {
  const client = await startClient(t)
  const expected: Array<[string, NxCloudFailureKind, number | undefined]> = [
    ['sim-code-9008', 'nxcloud-error', 9008],
    ['sim-code-1003', 'nxcloud-error', 1003],
    ['sim-code-9001', 'nxcloud-error', 9001],
    ['sim-http-503', 'http-status', undefined],
    ['sim-bad-json', 'invalid-response', undefined],
    ['sim-bad-shape', 'invalid-response', undefined],
    ['sim-bad-record', 'invalid-response', undefined],
    ['sim-reset', 'unreachable', undefined],
    ['sim-slow-10000', 'timeout', undefined],
  ]
  for (const [appkey, kind, code] of expected) {
    const failure = await failureOf(client, appkey)
    t.equal(failure.kind, kind, `${appkey}: ${kind}`)
    t.equal(failure.code, code, `${appkey}: code ${String(code)}`)
  }
})

t.test('what the NxCloud error knows: transient failures, answers about the request, about the tenant', async (t) => {
  const client = await startClient(t)
  const facts = async (appkey: string) => {
    const failure = await failureOf(client, appkey)
    return { transient: failure.transient, aboutTheRequest: failure.aboutTheRequest, aboutTheTenant: failure.aboutTheTenant }
  }
  t.same(await facts('sim-code-9001'), { transient: true, aboutTheRequest: false, aboutTheTenant: false })
  t.same(await facts('sim-code--1'), { transient: true, aboutTheRequest: false, aboutTheTenant: false })
  t.same(await facts('sim-http-502'), { transient: true, aboutTheRequest: false, aboutTheTenant: false })
  t.same(await facts('sim-http-404'), { transient: false, aboutTheRequest: false, aboutTheTenant: false })
  t.same(await facts('sim-code-9000'), { transient: false, aboutTheRequest: true, aboutTheTenant: false })
  t.same(await facts('sim-code-9008'), { transient: false, aboutTheRequest: true, aboutTheTenant: true })
  t.same(await facts('sim-code-9010'), { transient: false, aboutTheRequest: true, aboutTheTenant: true })
  t.same(await facts('sim-code-1003'), { transient: false, aboutTheRequest: false, aboutTheTenant: false })
})

t.test('a 9008 carries NxCloud\'s own words', async (t) => {
  const client = await startClient(t)
  const failure = await failureOf(client, 'sim-code-9008')
  t.type(failure.upstreamMessage, 'string')
  t.match(failure.message, `NxCloud answered code 9008: ${failure.upstreamMessage ?? ''}`)
})
