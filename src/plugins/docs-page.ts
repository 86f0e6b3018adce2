import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import fp from 'fastify-plugin'
import swaggerUi from '@fastify/swagger-ui'
import type { RouteHandlerMethod } from 'fastify'
import { readStaticAssets, type StaticAsset } from '../http/static-assets.js'
import { JSON_CONTENT_TYPE } from '../http/responses.js'

/** Where the human-readable contract is served; public, like /openapi.json. */
export const DOCS_PATH = '/docs'

// The page and its assets come from this origin only (the package ships them): no CDN, no inline
// script or style, no framing. Swagger UI's stylesheet draws its icons as data: images.
const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

// Where @fastify/swagger-ui keeps the files its page loads (its own lib/routes.js serves them from there).
const SWAGGER_UI_ASSETS = join(dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui/package.json')), 'static')
const DOCUMENT_ROUTE = `${DOCS_PATH}/json`
const ASSETS_ROUTE = `${DOCS_PATH}/static/*`

/**
 * The contract as a page (Swagger UI): each operation with its answers, problems and both credential schemes.
 * The routes are @fastify/swagger-ui's, but two answer from bytes made once (its handlers swapped as they
 * are registered, Fastify's onRoute hook): the document the page loads, which it would serialise for every
 * request, and the page's scripts, styles and icons (2.4 MiB), which @fastify/static would read from disk
 * for every request.
 */
export const docsPagePlugin = fp(async function docsPage (app) {
  const assets = await readStaticAssets(SWAGGER_UI_ASSETS)
  app.addHook('onRoute', (route) => {
    if (route.url === DOCUMENT_ROUTE) route.handler = sendDocument
    else if (route.url === ASSETS_ROUTE) route.handler = sendAssetOr(route.handler, assets)
  })
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    staticCSP: DOCS_CONTENT_SECURITY_POLICY,
    theme: { title: 'nxcloud-bff API' },
    uiConfig: {
      // Without the top bar: its "explore" box loads other documents, and its logo is an inline <style> the CSP refuses.
      layout: 'BaseLayout',
      docExpansion: 'list',
      displayOperationId: true,
      // Credentials typed into "Authorize" stay in the page's memory, never in localStorage.
      persistAuthorization: false,
      // The problem types are listed in the description; the raw schemas section adds nothing.
      defaultModelsExpandDepth: -1,
    },
  })
}, { name: 'docs-page', dependencies: ['swagger'] })

const sendDocument: RouteHandlerMethod = function (_request, reply) {
  reply.type(JSON_CONTENT_TYPE).send(this.openApiDocumentJson())
}

/** A file read at start is sent from memory; any other path goes to the route's own handler (a 404 or a file on disk). */
function sendAssetOr (original: RouteHandlerMethod, assets: Map<string, StaticAsset>): RouteHandlerMethod {
  return function (request, reply) {
    const asset = assets.get((request.params as Record<string, string | undefined>)['*'] ?? '')
    if (asset === undefined) return original.call(this, request, reply)
    reply.type(asset.contentType).send(asset.bytes)
  }
}
