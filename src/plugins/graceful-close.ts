import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** True once `close()` has begun: readiness fails and connections are not kept alive. */
    isShuttingDown (): boolean
  }
}

/**
 * Drains instead of refusing. Requests already on their way keep being served while the server
 * closes, each answer telling its client to reconnect elsewhere (`Connection: close`); without that,
 * a keep-alive socket left idle after its last answer would hold `close()` open until it timed out.
 */
export const gracefulClosePlugin = fp(async function gracefulClose (app) {
  let shuttingDown = false
  app.decorate('isShuttingDown', () => shuttingDown)
  app.addHook('preClose', async () => { shuttingDown = true })
  app.addHook('onSend', async (_request, reply) => {
    if (shuttingDown) reply.header('connection', 'close')
  })
}, { name: 'graceful-close' })
