/** A tenant's phone list as answered: the serialised body, its ETag, and when NxCloud was read. */
export interface StoredPhoneList {
  kind: 'list'
  body: string
  /** `body` in UTF-8, made once with the entry: every answer sends these bytes, never re-encoding the text. */
  bytes: Buffer
  /** Strong entity tag of `body` (RFC 9110), quoted, computed once when the list was fetched. */
  etag: string
  fetchedAtMs: number
}

/**
 * A list entry, with its bytes made once, in memory of their own: `Buffer.from` would cut small ones
 * from Node's shared 8 KiB pool, and one cached slice keeps its whole pool chunk alive after the
 * entries cut beside it were evicted, so the memory tier would hold more than its bound says.
 */
export function storedPhoneList (body: string, etag: string, fetchedAtMs: number): StoredPhoneList {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(body, 'utf8'))
  bytes.write(body, 'utf8')
  return { kind: 'list', body, bytes, etag, fetchedAtMs }
}

/** NxCloud's word that an appkey does not exist (9008), remembered briefly: negative caching. */
export interface StoredUnknownTenant {
  kind: 'unknown-tenant'
  fetchedAtMs: number
  upstreamCode: number
  /** NxCloud's own words with it, when it had any. */
  message: string | undefined
}

export type StoredEntry = StoredPhoneList | StoredUnknownTenant

/** Tells one entry of a tenant from another: a list's ETag (its bytes hold `fetchedAt`), else when it was learnt. */
export function versionOf (entry: StoredEntry): string {
  return entry.kind === 'list' ? entry.etag : `unknown-tenant@${entry.fetchedAtMs}`
}

/**
 * Plain storage of phone lists: no notion of freshness (the service decides that from `fetchedAtMs`),
 * only how long an entry may be kept at all.
 */
export interface PhoneListStore {
  /** Reads without I/O, for stores that hold their entries in this process; absent otherwise. */
  readonly peek?: (appkey: string) => StoredEntry | undefined
  get (appkey: string): Promise<StoredEntry | undefined>
  set (appkey: string, entry: StoredEntry, retainSeconds: number): Promise<void>
  delete (appkey: string): Promise<void>
}

/** Held while one caller fills a tenant's entry, so peers wait for it rather than call NxCloud too. */
export interface FillLease {
  acquired: boolean
  release (): Promise<void>
}

/** Coordinates fills across instances; within one process the service coalesces fills itself. */
export interface FillLeases {
  acquire (appkey: string, leaseMs: number): Promise<FillLease>
  isHeld (appkey: string): Promise<boolean>
}
