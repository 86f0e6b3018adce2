import { SpanStatusCode, trace, type AttributeValue, type Attributes, type Tracer } from '@opentelemetry/api'
import type { FastifyPluginCallback } from 'fastify'

/**
 * What the application code uses of tracing, whether or not it is on. Until `enableTracing` is called
 * by the process entry (src/observability/start-tracing.ts) every function here returns at once: no
 * span, no context lookup, so a service without an OTLP endpoint pays one boolean test where it traces.
 */

export const TRACER_NAME = 'nxcloud-bff'

let tracer: Tracer | undefined
let requestTracing: FastifyPluginCallback | undefined

/** Called once the SDK runs: spans are recorded from now on, and `requestTracing` joins the app. */
export function enableTracing (requestTracingPlugin: FastifyPluginCallback): void {
  tracer = trace.getTracer(TRACER_NAME)
  requestTracing = requestTracingPlugin
}

export function tracingEnabled (): boolean {
  return tracer !== undefined
}

/** The plugin that opens a span per request (@fastify/otel), or undefined when tracing is off. */
export function requestTracingPlugin (): FastifyPluginCallback | undefined {
  return requestTracing
}

/**
 * Runs `work` inside a span that is the active one meanwhile (so undici and ioredis spans become its
 * children) and ends with it, marked failed when `work` throws. A plain call when tracing is off.
 */
export function inSpan<T> (name: string, attributes: Attributes | undefined, work: () => Promise<T>): Promise<T> {
  if (tracer === undefined) return work()
  return tracer.startActiveSpan(name, attributes === undefined ? {} : { attributes }, async (span) => {
    try {
      return await work()
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
      if (error instanceof Error) span.recordException(error)
      throw error
    } finally {
      span.end()
    }
  })
}

/** A span for something that took no time worth measuring (a lookup in this process's memory). */
export function recordInstantSpan (name: string, attributes: Attributes): void {
  tracer?.startSpan(name, { attributes }).end()
}

/** Adds an attribute to the active span (one opened by `inSpan`); nothing without one. */
export function setActiveSpanAttribute (key: string, value: AttributeValue | undefined): void {
  if (tracer === undefined || value === undefined) return
  trace.getActiveSpan()?.setAttribute(key, value)
}

/**
 * pino's `mixin`: every line written while a span is active carries its trace and span ids; nothing to
 * look up when tracing is off. A new object each time: pino merges the line's own fields into the one returned.
 */
export function traceIdsLogMixin (): object {
  if (tracer === undefined) return {}
  const spanContext = trace.getActiveSpan()?.spanContext()
  if (spanContext === undefined || !trace.isSpanContextValid(spanContext)) return {}
  return { traceId: spanContext.traceId, spanId: spanContext.spanId }
}
