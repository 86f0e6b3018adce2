import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'

/** Answers a request itself (true) or leaves it to Fastify (false, having written nothing). */
export type RequestLane = (request: IncomingMessage, response: ServerResponse) => boolean

/** Where a lane is installed once the app is ready; empty until then and after it closes. */
export class LaneSlot {
  lane: RequestLane | undefined
  /** Told of an error the lane threw (a bug): the request then goes to Fastify, or its socket is closed. */
  reportError: (error: unknown) => void = () => {}
}

interface HttpServerOptions {
  http?: ServerOptions
  keepAliveTimeout: number
  requestTimeout: number
  connectionTimeout: number
  maxRequestsPerSocket: number
}

/**
 * Fastify's `serverFactory`: the HTTP/1.1 server Fastify would make (the same settings, as Fastify's
 * server.js sets them), whose requests go first to the lane in `slot`, when there is one, then to Fastify.
 */
export function createHttpServer (slot: LaneSlot) {
  return (fastifyHandler: (request: IncomingMessage, response: ServerResponse) => void, fastifyOptions: Record<string, unknown>): Server => {
    // Fastify hands its own options, defaults applied (fastify.js), as a plain record.
    const options = fastifyOptions as unknown as HttpServerOptions
    const server = createServer(options.http ?? {}, (request, response) => {
      const lane = slot.lane
      if (lane === undefined || !answeredByLane(slot, lane, request, response)) fastifyHandler(request, response)
    })
    server.keepAliveTimeout = options.keepAliveTimeout
    server.requestTimeout = options.requestTimeout
    server.setTimeout(options.connectionTimeout)
    // Fastify treats 0 as "Node's default", and so does this.
    if (options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket
    return server
  }
}

// A lane that throws must not take the process down with it, as an exception in an event listener would:
// Fastify answers the request when nothing was sent yet; a half-sent answer can only be cut off.
function answeredByLane (slot: LaneSlot, lane: RequestLane, request: IncomingMessage, response: ServerResponse): boolean {
  try {
    return lane(request, response)
  } catch (error) {
    slot.reportError(error)
    if (!response.headersSent) return false
    response.destroy()
    return true
  }
}
