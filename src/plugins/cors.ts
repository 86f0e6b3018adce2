import fp from 'fastify-plugin'
import cors from '@fastify/cors'

/** Lets the listed browser origins call the API and read the headers that describe an answer. */
export const corsPlugin = fp(async function crossOrigin (app, options: { origins: string[] }) {
  if (options.origins.length === 0) return
  await app.register(cors, {
    origin: options.origins,
    methods: ['GET', 'HEAD'],
    allowedHeaders: ['authorization', 'x-api-key', 'x-request-id', 'if-none-match'],
    exposedHeaders: ['x-request-id', 'x-cache', 'age', 'cache-control', 'etag', 'retry-after', 'www-authenticate'],
    maxAge: 600,
  })
}, { name: 'cors' })
