import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { Registry } from 'prom-client'
import { pathOf } from '../http/request-path.js'

const METRICS_PATH = '/metrics'

export interface MetricsListenerOptions {
  host: string
  /** 0 picks a free port (tests); the process never passes 0, which means "off" in METRICS_PORT. */
  port: number
  log: FastifyBaseLogger
}

export interface MetricsListener {
  /** The port it listens on. */
  readonly port: number
  close (): Promise<void>
}

/**
 * A listener of its own for Prometheus, apart from the public one: scrapes never pass the public
 * route's authentication, limits or logs, and the series are never reachable where callers are.
 * It answers `GET /metrics` and nothing else.
 */
export async function listenForScrapes (registry: Registry, options: MetricsListenerOptions): Promise<MetricsListener> {
  const server = createServer((request, response) => { answerScrape(registry, request, response, options.log) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  options.log.info({ metrics: { host: options.host, port } }, 'metrics listening')
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => { resolve() })
      // A scraper's kept-alive connection would hold close() open until it timed out.
      server.closeIdleConnections()
    }),
  }
}

function answerScrape (registry: Registry, request: IncomingMessage, response: ServerResponse, log: FastifyBaseLogger): void {
  if (request.method !== 'GET' || pathOf(request.url ?? '') !== METRICS_PATH) {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`Only GET ${METRICS_PATH} is answered here\n`)
    return
  }
  registry.metrics().then(
    (text) => { response.writeHead(200, { 'content-type': registry.contentType }).end(text) },
    (error: unknown) => {
      log.error({ err: error }, 'metrics could not be collected')
      response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('The metrics could not be collected\n')
    }
  )
}
