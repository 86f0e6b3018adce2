import Type, { type Static } from 'typebox'

// Enum values are documented, not enforced: NxCloud adds values, and a new one must reach the caller
// unchanged rather than break the list. `examples` lists the known ones for client authors.
const OpenString = (description: string, known: string[]) =>
  Type.String({ description: `${description} Known values: ${known.join(', ')}; others may appear.`, examples: known })

export const PhoneSchema = Type.Object({
  displayPhoneNumber: Type.String({ description: 'The registered WhatsApp number, as NxCloud displays it.' }),
  verifiedName: Type.String({ description: 'Display name of the number.' }),
  qualityRating: OpenString('Quality rating of the number.', ['GREEN', 'YELLOW', 'RED', 'UNKNOWN']),
  nameStatus: OpenString('Verification status of the display name.', [
    'APPROVED', 'NONE', 'AVAILABLE_WITHOUT_REVIEW', 'DECLINED', 'EXPIRED', 'PENDING_REVIEW',
  ]),
  codeVerificationStatus: OpenString('Verification status of the number.', ['NOT_VERIFIED', 'VERIFIED']),
  registerStatus: Type.Integer({
    description: 'Connection status: 1 creation failed, 2 registration failed, 3 creation in progress, ' +
      '4 creation successful, 5 registration successful (local client).',
  }),
  status: OpenString('Status of the number.', [
    'PENDING', 'DELETED', 'MIGRATED', 'BANNED', 'RESTRICTED', 'RATE_LIMITED', 'FLAGGED',
    'CONNECTED', 'DISCONNECTED', 'UNKNOWN', 'UNVERIFIED',
  ]),
  currentLimit: Type.Union([
    OpenString('24-hour limit of business-initiated conversations.', [
      'TIER_50', 'TIER_250', 'TIER_1K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED',
    ]),
    Type.Null(),
  ], { description: 'null when NxCloud reports no limit level.' }),
  wabaId: Type.String({ description: 'WhatsApp Business Account id.' }),
  wabaName: Type.String({ description: 'WhatsApp Business Account name.' }),
}, { additionalProperties: false })

export const PhoneListSchema = Type.Object({
  appkey: Type.String({ description: 'The customer application the list belongs to.' }),
  phones: Type.Array(PhoneSchema),
  fetchedAt: Type.String({ format: 'date-time', description: 'When the list was read from NxCloud.' }),
}, { additionalProperties: false })

export type Phone = Static<typeof PhoneSchema>
export type PhoneList = Static<typeof PhoneListSchema>

/** A list as the service answers it (the simulator's demo-shop), for the contract's examples. */
export const PHONE_LIST_EXAMPLE: PhoneList = {
  appkey: 'demo-shop',
  phones: [
    {
      displayPhoneNumber: '+86 138 0000 0024',
      verifiedName: '牛小信 Shop',
      qualityRating: 'UNKNOWN',
      nameStatus: 'APPROVED',
      codeVerificationStatus: 'VERIFIED',
      registerStatus: 1,
      status: 'CONNECTED',
      currentLimit: null,
      wabaId: '116960000086404',
      wabaName: 'DEMO SHOP',
    },
    {
      displayPhoneNumber: '+1 555 000 0099',
      verifiedName: 'Demo Shop HK',
      qualityRating: 'GREEN',
      nameStatus: 'APPROVED',
      codeVerificationStatus: 'NOT_VERIFIED',
      registerStatus: 5,
      status: 'CONNECTED',
      currentLimit: 'TIER_1K',
      wabaId: '116960000086404',
      wabaName: 'DEMO SHOP',
    },
  ],
  fetchedAt: '2026-11-27T03:28:55.481Z',
}
