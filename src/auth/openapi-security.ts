import { HttpHeaders } from '../http/headers.js'

/** The credential schemes as the OpenAPI document declares them (components.securitySchemes). */
export const SECURITY_SCHEMES = {
  apiKey: {
    type: 'apiKey',
    in: 'header',
    name: HttpHeaders.apiKey.canonical,
    description: 'For services: a key issued with `npm run key:new`, naming the tenants and scopes it opens.',
  },
  bearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'For browsers: a token of the company identity provider, with the tenants in its ' +
      '`appkeys` claim (configurable) and the scopes in `scope` or `scp`.',
  },
} as const

/** Either credential opens a protected operation (OpenAPI: alternatives are separate objects). */
export const SECURITY_REQUIREMENTS = [{ apiKey: [] }, { bearer: [] }]

/** An operation anyone may call: the probes and the contract itself. */
export const NO_SECURITY: never[] = []
