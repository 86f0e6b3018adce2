/** A tenant's phone list as answered: the serialised body, its ETag, and when NxCloud was read. */
export interface StoredPhoneList {
  body: string
  /** Strong entity tag of `body` (RFC 9110), quoted, computed once when the list was fetched. */
  etag: string
  fetchedAtMs: number
}

/**
 * Plain storage of phone lists: no notion of freshness (the service decides that from `fetchedAtMs`),
 * only how long an entry may be kept at all.
 */
export interface PhoneListStore {
  /** Reads without I/O, for stores that hold their entries in this process; absent otherwise. */
  readonly peek?: (appkey: string) => StoredPhoneList | undefined
  get (appkey: string): Promise<StoredPhoneList | undefined>
  set (appkey: string, entry: StoredPhoneList, retainSeconds: number): Promise<void>
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
