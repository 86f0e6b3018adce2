import { Gauge } from 'prom-client'

/**
 * The change feed's state, read when scraped: 1 while this instance hears the shared cache's
 * changes, 0 while it does not, and then its memory tier is emptied and unused, so every hit reads
 * Redis. Only in Redis mode, where there is a feed.
 */
export function changeFeedListeningGauge (name: string, isListening: () => boolean): Gauge {
  return new Gauge({
    name,
    help: '1 while this instance hears the shared cache\'s changes (its memory tier in use), 0 while it does not (every hit reads Redis). Only with REDIS_URL.',
    registers: [],
    collect () { this.set(isListening() ? 1 : 0) },
  })
}
