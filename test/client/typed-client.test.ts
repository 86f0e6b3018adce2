import t from 'tap'
import type { Test } from 'tap'
import { Value } from 'typebox/value'
import { PhoneListSchema } from '../../src/phones/phone-schemas.js'
import { ProblemTypes } from '../../src/errors/problem-types.js'
import { apiKeyEnv, issue, writeApiKeyFile } from '../auth/api-key-fixture.js'
import { buildTestApp, startSimulator, testConfig } from '../helper.js'
import { adviceFor, createNxCloudBffClient, listTenantPhones, type Credentials } from './typed-client.js'

// demo-shop exists at the simulator; unknown-shop does not, so NxCloud answers 9008 for it.
const KNOWN_TENANT = 'demo-shop'
const UNKNOWN_TENANT = 'unknown-shop'

/** The service with API keys on, listening on a free loopback port; its origin and a key for both tenants. */
async function listeningService (t: Test): Promise<{ origin: string, credentials: Credentials }> {
  const simulator = await startSimulator(t)
  const shop = issue('typed-client', [KNOWN_TENANT, UNKNOWN_TENANT])
  const { app } = await buildTestApp(t, testConfig(simulator, apiKeyEnv(writeApiKeyFile(t, [shop.entry]))))
  const origin = await app.listen({ port: 0, host: '127.0.0.1' })
  return { origin, credentials: { apiKey: shop.key } }
}

t.test('the typed client reads a phone list over a real socket, typed as the contract says', async (t) => {
  const { origin, credentials } = await listeningService(t)
  const result = await listTenantPhones(createNxCloudBffClient(origin, credentials), KNOWN_TENANT)
  if (!result.ok) return t.fail(`expected a list, got ${result.status} ${result.problem.type}`)
  const { phoneList } = result
  t.equal(phoneList.appkey, KNOWN_TENANT)
  t.ok(phoneList.phones.length > 0, 'the demo tenant has phones')
  // Typed fields, no casts: the compiler checked these names against openapi/nxcloud-bff.d.ts.
  const numbers: string[] = phoneList.phones.map((phone) => phone.displayPhoneNumber)
  const limits: Array<string | null> = phoneList.phones.map((phone) => phone.currentLimit)
  t.ok(numbers.every((number) => number.startsWith('+')), 'display numbers are international')
  t.ok(limits.includes(null), 'an empty upstream limit arrives as null, as the contract types it')
  t.ok(Value.Check(PhoneListSchema, phoneList), 'the body matches the schema the contract was generated from')
  t.equal(result.cache, 'MISS')
})

t.test('the typed client receives a documented problem it can switch on', async (t) => {
  const { origin, credentials } = await listeningService(t)
  const result = await listTenantPhones(createNxCloudBffClient(origin, credentials), UNKNOWN_TENANT)
  if (result.ok) return t.fail('expected a problem for an appkey NxCloud does not know')
  t.equal(result.status, ProblemTypes.tenantNotFound.status)
  t.equal(result.problem.type, ProblemTypes.tenantNotFound.type)
  t.equal(result.problem.upstreamCode, 9008)
  t.equal(result.problem.instance, `/tenants/${UNKNOWN_TENANT}/phones`)
  t.equal(adviceFor(result.problem), 'fix-the-request')
})

t.test('without credentials the typed client gets the 401 problem with its challenge', async (t) => {
  const { origin } = await listeningService(t)
  const client = createNxCloudBffClient(origin)
  const { error, response } = await client.GET('/tenants/{appkey}/phones', { params: { path: { appkey: KNOWN_TENANT } } })
  t.equal(response.status, ProblemTypes.unauthenticated.status)
  t.equal(error?.type, ProblemTypes.unauthenticated.type)
  t.match(response.headers.get('www-authenticate'), /ApiKey realm="nxcloud-bff"/)
  t.equal(adviceFor(error!), 'fix-the-credentials')
})

t.test('the typed client reads the probes and the contract itself', async (t) => {
  const { origin } = await listeningService(t)
  const client = createNxCloudBffClient(origin)
  const liveness = await client.GET('/healthz')
  t.equal(liveness.data?.status, 'ok')
  const readiness = await client.GET('/readyz')
  t.equal(readiness.data?.status, 'ready')
  const contract = await client.GET('/openapi.json')
  t.equal(contract.data?.openapi, '3.1.0')
})
