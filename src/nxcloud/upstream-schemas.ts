import Type, { type Static } from 'typebox'
import { Compile } from 'typebox/compile'

/** The `{code, message, data}` envelope every NxCloud answer comes in. */
export const UpstreamEnvelopeSchema = Type.Object({
  code: Type.Integer(),
  message: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  data: Type.Optional(Type.Unknown()),
})

/** One phone record as `phoneList` documents it (snake_case); unknown extra fields are ignored. */
export const UpstreamPhoneSchema = Type.Object({
  display_phone_number: Type.String(),
  verified_name: Type.String(),
  quality_rating: Type.String(),
  name_status: Type.String(),
  code_verification_status: Type.String(),
  register_status: Type.Integer(),
  status: Type.String(),
  current_limit: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  waba_id: Type.String(),
  waba_name: Type.String(),
})

// `code 0` with `data: null` is how NxCloud says "no phones".
export const UpstreamPhoneListDataSchema = Type.Union([Type.Null(), Type.Array(UpstreamPhoneSchema)])

export type UpstreamEnvelope = Static<typeof UpstreamEnvelopeSchema>
export type UpstreamPhone = Static<typeof UpstreamPhoneSchema>

export const UpstreamEnvelopeValidator = Compile(UpstreamEnvelopeSchema)
export const UpstreamPhoneListDataValidator = Compile(UpstreamPhoneListDataSchema)
