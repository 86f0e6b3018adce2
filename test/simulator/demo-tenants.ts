// Demo data for the NxCloud simulator. Field names and values follow the upstream
// phoneList documentation (snake_case, upstream spellings such as 'UNKNOW' kept as-is).

export const DEMO_ACCESS_KEY = 'demo-access-key'
export const DEMO_ACCESS_SECRET = 'demo-access-secret-not-for-production'

// Enum-like fields are plain strings: the upstream may add values it has not documented,
// and the simulator must be able to send them to prove they pass through.
export interface UpstreamPhone {
  display_phone_number: string
  quality_rating: string
  name_status: string
  verified_name: string
  code_verification_status: string
  current_limit: string
  register_status: number
  status: string
  waba_id: string
  waba_name: string
}

export interface DemoTenant {
  // 'other' means the appkey exists but belongs to a different NxCloud customer (code 9010)
  owner: 'self' | 'other'
  // null reproduces the upstream answering code 0 with data null
  phones: UpstreamPhone[] | null
}

const DEMO_SHOP_PHONES: UpstreamPhone[] = [
  {
    display_phone_number: '+86 138 0000 0024',
    quality_rating: 'UNKNOW',
    name_status: 'APPROVED',
    verified_name: '牛小信 Shop',
    code_verification_status: 'VERIFIED',
    current_limit: '',
    register_status: 1,
    status: 'CONNECTED',
    waba_id: '116960000086404',
    waba_name: 'DEMO SHOP',
  },
  {
    display_phone_number: '+1 555 000 0099',
    quality_rating: 'GREEN',
    name_status: 'APPROVED',
    verified_name: 'Demo Shop HK',
    code_verification_status: 'NOT_VERIFIED',
    current_limit: 'TIER_1K',
    register_status: 5,
    status: 'CONNECTED',
    waba_id: '116960000086404',
    waba_name: 'DEMO SHOP',
  },
]

const DEMO_BANK_PHONES: UpstreamPhone[] = [
  {
    display_phone_number: '+44 20 7946 0018',
    quality_rating: 'YELLOW',
    name_status: 'PENDING_APPROVAL',
    verified_name: 'Demo Bank',
    code_verification_status: 'VERIFIED',
    current_limit: 'TIER_10K',
    register_status: 3,
    status: 'ONBOARDING',
    waba_id: '204410000007001',
    waba_name: 'DEMO BANK',
  },
]

const DEMO_OTHER_PHONES: UpstreamPhone[] = [
  {
    display_phone_number: '+65 6000 0042',
    quality_rating: 'GREEN',
    name_status: 'APPROVED',
    verified_name: 'Someone Else',
    code_verification_status: 'VERIFIED',
    current_limit: 'TIER_100K',
    register_status: 5,
    status: 'CONNECTED',
    waba_id: '306500000000042',
    waba_name: 'OTHER CUSTOMER',
  },
]

export const DEMO_TENANTS: Readonly<Record<string, DemoTenant>> = {
  'demo-shop': { owner: 'self', phones: DEMO_SHOP_PHONES },
  'demo-bank': { owner: 'self', phones: DEMO_BANK_PHONES },
  'demo-empty': { owner: 'self', phones: null },
  'demo-other': { owner: 'other', phones: DEMO_OTHER_PHONES },
}

const GENERATED_TENANT_PREFIX = 'bench-tenant-'
const GENERATED_TENANT = /^bench-tenant-(\d{1,9})$/
const GENERATED_NUMBER_DIGITS = 9

/** The appkey of the n-th generated tenant (see `generatedTenant`). */
export function generatedTenantAppkey (n: number): string {
  return `${GENERATED_TENANT_PREFIX}${n}`
}

/**
 * `bench-tenant-<n>` (n: 1–9 digits) is a tenant of its own whose two phones are demo-shop's with numbers
 * and names made from n, so that a load test can fill a cache with as many distinct, realistic lists as it
 * needs; any other appkey is not a generated tenant.
 */
export function generatedTenant (appkey: string): DemoTenant | undefined {
  const n = GENERATED_TENANT.exec(appkey)?.[1]
  if (n === undefined) return undefined
  const digits = n.padStart(GENERATED_NUMBER_DIGITS, '0')
  const [first, second] = DEMO_SHOP_PHONES as [UpstreamPhone, UpstreamPhone]
  const names = { verified_name: `Bench Tenant ${n}`, waba_id: `3${digits}`, waba_name: `BENCH TENANT ${n}` }
  return {
    owner: 'self',
    phones: [
      { ...first, ...names, display_phone_number: `+1 555 ${digits}` },
      { ...second, ...names, display_phone_number: `+44 20 ${digits}` },
    ],
  }
}
