import fp from 'fastify-plugin'
import swaggerUi from '@fastify/swagger-ui'

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

/** The contract as a page (Swagger UI): each operation with its answers, problems and both credential schemes. */
export const docsPagePlugin = fp(async function docsPage (app) {
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
