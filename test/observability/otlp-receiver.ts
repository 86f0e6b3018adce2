/**
 * A stand-in OpenTelemetry collector: an OTLP/HTTP receiver on loopback taking JSON exports
 * (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) at POST /v1/traces, keeping every body as received and
 * the spans flattened out of them.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

interface Teardown {
  teardown (fn: () => unknown): void
}

type AnyValue = { stringValue?: string, intValue?: number | string, boolValue?: boolean, doubleValue?: number }
type KeyValue = { key: string, value: AnyValue }

interface ExportedSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes?: KeyValue[]
}

interface TraceExport {
  resourceSpans?: Array<{ scopeSpans?: Array<{ scope?: { name?: string }, spans?: ExportedSpan[] }> }>
}

export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** Empty for a root span. */
  parentSpanId: string
  name: string
  kind: number
  /** The instrumentation that made it (`@fastify/otel`, `@opentelemetry/instrumentation-undici`, ...). */
  scope: string
  attributes: Record<string, string | number | boolean | undefined>
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string
  /** Every export body, as the exporter sent it. */
  readonly bodies: string[]
  readonly spans: ReceivedSpan[]
}

/** OTLP's JSON encoding writes int64 values as strings. */
function valueOf (value: AnyValue): string | number | boolean | undefined {
  if (value.intValue !== undefined) return Number(value.intValue)
  return value.stringValue ?? value.boolValue ?? value.doubleValue
}

function spansOf (body: TraceExport): ReceivedSpan[] {
  return (body.resourceSpans ?? []).flatMap((resourceSpans) => (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
    (scopeSpans.spans ?? []).map((span) => ({
      traceId: span.traceId,
      spanId: span.spanId,
      parentSpanId: span.parentSpanId ?? '',
      name: span.name,
      kind: span.kind,
      scope: scopeSpans.scope?.name ?? '',
      attributes: Object.fromEntries((span.attributes ?? []).map(({ key, value }) => [key, valueOf(value)])),
    }))))
}

export async function startOtlpReceiver (t: Teardown): Promise<OtlpReceiver> {
  const bodies: string[] = []
  const spans: ReceivedSpan[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/v1/traces' || request.headers['content-type'] !== 'application/json') {
        response.writeHead(404).end()
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      bodies.push(body)
      spans.push(...spansOf(JSON.parse(body) as TraceExport))
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => {
    server.close(resolve)
    server.closeAllConnections()
  }))
  const { port } = server.address() as AddressInfo
  return { endpoint: `http://127.0.0.1:${port}`, bodies, spans }
}
