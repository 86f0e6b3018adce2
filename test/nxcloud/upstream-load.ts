/**
 * What the upstream-protection tests share: the app listening on loopback, many requests sent at once
 * over real sockets, and what the breaker's metrics and log lines say.
 */
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { Pool } from 'undici'
import { generatedTenantAppkey } from '../simulator/demo-tenants.js'
import { parseExposition, valueOf } from '../metrics/prometheus-text.js'
import { phonesUrl } from '../helper.js'

/** One answer, with where it came in among all the answers of its burst. */
export interface Answer {
  status: number
  retryAfter: string | undefined
  problemType: string | undefined
  /** 0 for the first answer of the burst to arrive, 1 for the second... */
  order: number
}

interface Teardown {
  teardown (fn: () => unknown): void
}

export async function listenOnLoopback (t: Teardown, app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** The phone-list paths of `count` tenants no cache has seen, from the `first`-th generated one on. */
export function coldTenantPaths (count: number, first = 1): string[] {
  return Array.from({ length: count }, (_, index) => phonesUrl(generatedTenantAppkey(first + index)))
}

/** GETs every path at once, each on a socket of its own, as that many clients would. */
export async function getAtOnce (origin: string, paths: string[]): Promise<Answer[]> {
  const pool = new Pool(origin, { connections: paths.length, pipelining: 1 })
  let answered = 0
  try {
    return await Promise.all(paths.map(async (path) => {
      const response = await pool.request({ method: 'GET', path })
      const body = await response.body.text()
      const retryAfter = response.headers['retry-after']
      return {
        status: response.statusCode,
        retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
        problemType: response.statusCode >= 400 ? (JSON.parse(body) as { type?: string }).type : undefined,
        order: answered++,
      }
    }))
  } finally {
    await pool.close()
  }
}

export function countOf (answers: Answer[], status: number): number {
  return answers.filter((answer) => answer.status === status).length
}

/** What the breaker's series say now, read as a scrape would. */
export async function breakerSeries (app: FastifyInstance): Promise<{ state: number | undefined, openings: number | undefined, shed: number }> {
  const { samples } = parseExposition(await app.metrics.registry.metrics())
  return {
    state: valueOf(samples, 'nxcloud_bff_upstream_breaker_state'),
    openings: valueOf(samples, 'nxcloud_bff_upstream_breaker_openings_total'),
    shed: valueOf(samples, 'nxcloud_bff_upstream_calls_total', { outcome: 'shed', code: 'none' }) ?? 0,
  }
}

/** The log lines the breaker wrote about its changes of state, parsed. */
export function breakerLines (logs: string[]): Array<{ level: number, msg: string, breaker: Record<string, unknown> }> {
  return logs.map((line) => JSON.parse(line) as { level: number, msg: string, breaker?: Record<string, unknown> })
    .flatMap((line) => line.breaker === undefined ? [] : [{ level: line.level, msg: line.msg, breaker: line.breaker }])
}
