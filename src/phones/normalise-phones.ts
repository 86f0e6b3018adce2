import type { UpstreamPhone } from '../nxcloud/upstream-schemas.js'
import type { Phone } from './phone-schemas.js'

// NxCloud spells the unknown quality rating `UNKNOW`; callers get the word they would expect.
const UPSTREAM_RATING_SPELLINGS: Record<string, string> = { UNKNOW: 'UNKNOWN' }

export function normalisePhone (phone: UpstreamPhone): Phone {
  return {
    displayPhoneNumber: phone.display_phone_number,
    verifiedName: phone.verified_name,
    qualityRating: UPSTREAM_RATING_SPELLINGS[phone.quality_rating] ?? phone.quality_rating,
    nameStatus: phone.name_status,
    codeVerificationStatus: phone.code_verification_status,
    registerStatus: phone.register_status,
    status: phone.status,
    // An empty string is NxCloud's way of saying there is no limit level.
    currentLimit: phone.current_limit === '' || phone.current_limit === undefined ? null : phone.current_limit,
    wabaId: phone.waba_id,
    wabaName: phone.waba_name,
  }
}
