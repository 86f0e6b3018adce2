import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import { SECURITY_SCHEMES } from '../auth/openapi-security.js'
import { ProblemTypes } from '../errors/problem-types.js'

const problemTypeList = Object.values(ProblemTypes)
  .sort((one, other) => one.status - other.status)
  .map(({ status, type, title }) => `| ${status} | [\`${type}\`](${type}) | ${title} |`)
  .join('\n')

const API_DESCRIPTION = `Reads the WhatsApp phone numbers of NxCloud customer applications (tenants) for internal
frontends and services, so that none of them needs the NxCloud integrator secret.

Every error is an RFC 9457 problem (\`application/problem+json\`) whose \`type\` is one of these URIs, relative to
the service's origin. Each one opens a page on its problem (operation \`getProblemType\`): when it happens and what
to do, as HTML in a browser and as JSON otherwise.

| status | type | title |
|---|---|---|
${problemTypeList}
`

// Relative, so the document holds wherever the service is deployed: the docs page calls the origin it
// was loaded from, and a generated client is given its base URL (openapi-fetch's `baseUrl`).
const SERVERS = [{ url: '/', description: 'The origin this document is served from' }]

declare module 'fastify' {
  interface FastifyInstance {
    /** The OpenAPI document as JSON bytes, made once when the app is ready (every route known): each answer sends the same bytes. */
    openApiDocumentJson (): Buffer
  }
}

/** The OpenAPI 3.1 document, generated from the routes' TypeBox schemas. */
export const swaggerPlugin = fp(async function openApi (app, options: { version: string }) {
  let documentJson: Buffer | undefined
  app.decorate('openApiDocumentJson', () => {
    if (documentJson === undefined) throw new Error('the OpenAPI document is made when the app is ready')
    return documentJson
  })
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'nxcloud-bff',
        version: options.version,
        description: API_DESCRIPTION,
        contact: { name: 'nxcloud-bff maintainers' },
        license: { name: 'Proprietary: for internal use', identifier: 'LicenseRef-Proprietary' },
      },
      servers: SERVERS,
      components: { securitySchemes: SECURITY_SCHEMES },
      tags: [
        { name: 'tenants', description: 'NxCloud customer applications' },
        { name: 'operations', description: 'Health, readiness and this contract' },
        { name: 'problems', description: 'The problem types of the answers, one page each' },
      ],
    },
  })
  // After @fastify/swagger's own onReady hook, which gathers the shared schemas app.swagger() needs.
  app.addHook('onReady', function makeDocumentJson (done) {
    documentJson = Buffer.from(JSON.stringify(app.swagger()))
    done()
  })
}, { name: 'swagger' })
