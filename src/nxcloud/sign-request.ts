import { createHash } from 'node:crypto'

/** The four common headers that take part in the signature, besides `sign` itself. */
export interface SignedHeaders {
  accessKey: string
  action: string
  bizType: string
  ts: string
}

export interface SignInput extends SignedHeaders {
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
