import { register as registerLoaderHooks } from 'node:module'
import type { Config } from '../config.js'
import { SERVICE_VERSION } from '../version.js'
import { enableTracing } from './tracing.js'

/**
 * Starts OpenTelemetry tracing when an OTLP endpoint is configured; otherwise loads nothing of the SDK.
 * It must run before anything imports ioredis (see src/server.ts): ioredis is patched as it loads,
 * through an ESM loader hook. undici is traced through its diagnostics channels and Fastify by a
 * plugin, so those two need no hook.
 */

export type TracingConfig = Pick<Config,
  'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' | 'OTEL_EXPORTER_OTLP_PROTOCOL' |
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' | 'OTEL_SERVICE_NAME'>

export interface Tracing {
  /** Exports the spans still buffered, then stops. */
  shutdown (): Promise<void>
}

// Only these are wrapped by the loader hook; every other module loads untouched.
const PATCHED_MODULES = ['ioredis']
// The orchestrator probes every few seconds: a trace for each would bury the ones worth reading.
const UNTRACED_PATHS = new Set(['/healthz', '/readyz'])

export async function startTracing (config: TracingConfig): Promise<Tracing | undefined> {
  const tracesUrl = tracesUrlOf(config)
  if (tracesUrl === undefined) return undefined
  await hookModuleLoading(PATCHED_MODULES)
  const [
    { W3CTraceContextPropagator },
    { registerInstrumentations },
    { defaultResource, detectResources, envDetector, hostDetector, resourceFromAttributes },
    { BatchSpanProcessor, NodeTracerProvider },
    { UndiciInstrumentation },
    { IORedisInstrumentation },
    { FastifyOtelInstrumentation },
    exporter,
  ] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@fastify/otel'),
    createExporter(config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL, tracesUrl),
  ])
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector, hostDetector] }))
    .merge(resourceFromAttributes({ 'service.name': config.OTEL_SERVICE_NAME, 'service.version': SERVICE_VERSION }))
  // The sampler, batching and limits come from the standard OTEL_* variables, read by the SDK itself.
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] })
  // W3C trace context only: a caller's baggage is not ours to forward to NxCloud.
  provider.register({ propagator: new W3CTraceContextPropagator() })
  const requestTracing = new FastifyOtelInstrumentation({
    // One span per request; a span per hook would outnumber the spans that say something.
    instrumentHooks: false,
    instrumentHandler: false,
    ignorePaths: (route) => UNTRACED_PATHS.has(route.url ?? ''),
    // Named as HTTP server spans are (`GET /tenants/:appkey/phones`) rather than all `request`.
    requestHook: (span, request) => { span.updateName(serverSpanNameOf(request.method, request.routeOptions.url)) },
  })
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      // Request headers (accessKey, sign) are recorded only when listed in `headersToSpanAttributes`: none are.
      new UndiciInstrumentation(),
      // The command name only: arguments hold cache keys, rate-limit identities and whole phone lists.
      new IORedisInstrumentation({ dbStatementSerializer: (commandName) => commandName }),
      requestTracing,
    ],
  })
  enableTracing(requestTracing.plugin())
  return { shutdown: () => provider.shutdown() }
}

function serverSpanNameOf (method: string, route: string | undefined): string {
  return route === undefined ? method : `${method} ${route}`
}

// The headers, timeout and compression the exporters read from the OTEL_* variables themselves.
async function createExporter (protocol: TracingConfig['OTEL_EXPORTER_OTLP_PROTOCOL'], url: string) {
  const { OTLPTraceExporter } = protocol === 'http/json'
    ? await import('@opentelemetry/exporter-trace-otlp-http')
    : await import('@opentelemetry/exporter-trace-otlp-proto')
  return new OTLPTraceExporter({ url })
}

// As the OTLP specification has it: the signal's own endpoint as given, the general one with its path.
function tracesUrlOf (config: TracingConfig): string | undefined {
  const { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: tracesEndpoint, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } = config
  if (tracesEndpoint !== undefined) return tracesEndpoint
  return endpoint === undefined ? undefined : `${endpoint.replace(/\/+$/, '')}/v1/traces`
}

// Node 22.22+/24.11+/26 run loader hooks in-thread; older ones (Node 20) on the loader thread.
async function hookModuleLoading (modules: string[]): Promise<void> {
  const { register, supportsSyncHooks } = await import('import-in-the-middle/register-hooks.mjs')
  if (supportsSyncHooks()) register({ include: modules })
  else registerLoaderHooks('import-in-the-middle/hook.mjs', import.meta.url, { data: { include: modules } })
}
