import { Gauge } from 'prom-client'

/**
 * The change feed's state, read when scraped: 1 while this instance hears the shared cache's
 * changes, 0 while it does not: its memory tier then answers what it holds while fresh, so a change
 * made elsewhere can be served late (up to the TTL), and it is emptied once the feed is heard again.
 * Only in Redis mode, where there is a feed.
 */
export function changeFeedListeningGauge (name: string, isListening: () => boolean): Gauge {
  return new Gauge({
    name,
    help: '1 while this instance hears the shared cache\'s changes, 0 while it does not (its memory tier may then serve a list changed elsewhere, for at most the TTL). Only with Redis.',
    registers: [],
    collect () { this.set(isListening() ? 1 : 0) },
  })
}
