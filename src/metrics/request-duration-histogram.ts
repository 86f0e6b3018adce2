// Upper bounds in seconds: a cache hit takes well under a millisecond, a miss up to NXCLOUD_TIMEOUT_MS.
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

interface Series {
  labels: { route: string, method: string, status: string }
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  counts: number[]
  sum: number
}

interface Sample {
  metricName: string
  labels: Record<string, string | number>
  value: number
}

/**
 * The request duration histogram, recorded on every request, the cache hits included. prom-client's
 * labelled `observe` builds and hashes a label key and allocates on each call (about 1 µs per
 * request, measured); here a request costs three map lookups and two additions, and prom-client's
 * registry still writes the exposition: it reads this family through `get()`, as it reads its own.
 */
export class RequestDurationHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #byRoute = new Map<string, Map<string, Map<number, Series>>>()

  constructor (readonly name: string, readonly help: string) {}

  observe (route: string, method: string, status: number, seconds: number): void {
    const series = this.#seriesOf(route, method, status)
    let bucket = 0
    while (bucket < BUCKETS.length && seconds > (BUCKETS[bucket] as number)) bucket++
    series.counts[bucket] = (series.counts[bucket] as number) + 1
    series.sum += seconds
  }

  // What prom-client's registry asks of a metric when it writes the exposition.
  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: Sample[] }> {
    const values: Sample[] = []
    for (const byMethod of this.#byRoute.values()) {
      for (const byStatus of byMethod.values()) {
        for (const series of byStatus.values()) values.push(...this.#samplesOf(series))
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#byRoute.clear()
  }

  #seriesOf (route: string, method: string, status: number): Series {
    let byMethod = this.#byRoute.get(route)
    if (byMethod === undefined) this.#byRoute.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let series = byStatus.get(status)
    if (series === undefined) {
      series = { labels: { route, method, status: String(status) }, counts: new Array<number>(BUCKETS.length + 1).fill(0), sum: 0 }
      byStatus.set(status, series)
    }
    return series
  }

  #samplesOf (series: Series): Sample[] {
    const samples: Sample[] = []
    let cumulative = 0
    series.counts.forEach((count, bucket) => {
      cumulative += count
      samples.push({ metricName: `${this.name}_bucket`, labels: { ...series.labels, le: BUCKETS[bucket] ?? '+Inf' }, value: cumulative })
    })
    samples.push({ metricName: `${this.name}_sum`, labels: series.labels, value: series.sum })
    samples.push({ metricName: `${this.name}_count`, labels: series.labels, value: cumulative })
    return samples
  }
}
