import type { FastifyPluginAsync } from 'fastify'

/** Serves the contract other services generate their clients from. */
export const openApiRoutes: FastifyPluginAsync = async (app) => {
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
