/**
 * How a TypeScript service calls nxcloud-bff with a typed client: the types are the committed
 * openapi/nxcloud-bff.d.ts (openapi-typescript), the client is openapi-fetch. Paths, parameters,
 * answers and problems are all checked by the compiler against the contract.
 */
import createClient, { type Client } from 'openapi-fetch'
import type { operations, paths } from '../../openapi/nxcloud-bff.js'

export type NxCloudBffClient = Client<paths>

type ListTenantPhones = operations['listTenantPhones']['responses']

/** A tenant's phone list, as the 200 answer carries it. */
export type PhoneList = ListTenantPhones[200]['content']['application/json']

/** Any problem the operation documents (each status names the problem types it can carry). */
export type ListTenantPhonesProblem = ListTenantPhones[Exclude<keyof ListTenantPhones, 200 | 304>]['content']['application/problem+json']

export type Credentials = { apiKey: string } | { bearerToken: string }

/** `baseUrl` is the service's origin: the contract's server is relative (`/`), valid wherever it is deployed. */
export function createNxCloudBffClient (baseUrl: string, credentials?: Credentials): NxCloudBffClient {
  return createClient<paths>({ baseUrl, headers: credentialHeaders(credentials) })
}

function credentialHeaders (credentials: Credentials | undefined): Record<string, string> {
  if (credentials === undefined) return {}
  return 'apiKey' in credentials ? { 'x-api-key': credentials.apiKey } : { authorization: `Bearer ${credentials.bearerToken}` }
}

export type PhoneListResult =
  | { ok: true, phoneList: PhoneList, cache: string | null }
  | { ok: false, status: number, problem: ListTenantPhonesProblem, retryAfterSeconds: number | undefined }

/** Lists a tenant's phone numbers, or says which problem the service answered and when to retry. */
export async function listTenantPhones (client: NxCloudBffClient, appkey: string): Promise<PhoneListResult> {
  const { data, error, response } = await client.GET('/tenants/{appkey}/phones', { params: { path: { appkey } } })
  if (data !== undefined) return { ok: true, phoneList: data, cache: response.headers.get('x-cache') }
  const retryAfter = response.headers.get('retry-after')
  return {
    ok: false,
    status: response.status,
    problem: error,
    retryAfterSeconds: retryAfter === null ? undefined : Number(retryAfter),
  }
}

/** What a caller does with each problem type: the compiler refuses a type the contract does not list. */
export function adviceFor (problem: ListTenantPhonesProblem): 'fix-the-request' | 'fix-the-credentials' | 'retry-later' | 'report' {
  switch (problem.type) {
    case '/problems/unauthenticated':
    case '/problems/insufficient-scope':
    case '/problems/tenant-not-allowed':
      return 'fix-the-credentials'
    case '/problems/tenant-not-found':
    case '/problems/tenant-forbidden':
    case '/problems/route-not-found':
      return 'fix-the-request'
    case '/problems/rate-limited':
    case '/problems/upstream-unavailable':
    case '/problems/authentication-unavailable':
    case '/problems/upstream-timeout':
    case '/problems/upstream-unreachable':
      return 'retry-later'
    default:
      return 'report'
  }
}
