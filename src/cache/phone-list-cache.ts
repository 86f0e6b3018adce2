/** A tenant's phone list as it was answered: the serialised body and when NxCloud was read. */
export interface CachedPhoneList {
  body: string
  fetchedAtMs: number
}

/** Held while one caller fills a tenant's entry, so peers wait for it rather than call NxCloud too. */
export interface FillLease {
  acquired: boolean
  release (): Promise<void>
}

export interface PhoneListCache {
  /** The entry when it can be read without I/O (in-process caches); undefined otherwise. */
  peek (appkey: string): CachedPhoneList | undefined
  get (appkey: string): Promise<CachedPhoneList | undefined>
  set (appkey: string, entry: CachedPhoneList, ttlSeconds: number): Promise<void>
  acquireFillLease (appkey: string, leaseMs: number): Promise<FillLease>
  isFillLeaseHeld (appkey: string): Promise<boolean>
}

export const NO_LEASE: FillLease = { acquired: false, release: async () => {} }
