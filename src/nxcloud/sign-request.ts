import { createHash } from 'node:crypto'

/** What the signature covers: the four common headers besides `sign` itself, the body and the secret. */
export interface SignInput {
  accessKey: string
  action: string
  bizType: string
  ts: string
  /** The exact text sent as the request body; empty when there is none. */
  body: string
  accessSecret: string
}

/**
 * NxCloud's "API Interface Invocation Convention" for application/json endpoints:
 * lower-case hex MD5 of `accessKey=..&action=..&bizType=..&ts=..` (names in ASCII order),
 * then `&body=<sent body>` unless the body is empty, then `&accessSecret=<secret>`.
 */
export function signRequest (input: SignInput): string {
  return createHash('md5').update(stringToSign(input), 'utf8').digest('hex')
}

export function stringToSign ({ accessKey, action, bizType, ts, body, accessSecret }: SignInput): string {
  const headers = `accessKey=${accessKey}&action=${action}&bizType=${bizType}&ts=${ts}`
  const bodyPart = body === '' ? '' : `&body=${body}`
  return `${headers}${bodyPart}&accessSecret=${accessSecret}`
}
