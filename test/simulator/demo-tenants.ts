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
