import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import { BROWSER_READABLE_HEADERS, BROWSER_SENDABLE_HEADERS } from '../http/headers.js'

/** Lets the listed browser origins call the API and read the headers that describe an answer. */
export const corsPlugin = fp(async function crossOrigin (app, options: { origins: string[] }) {
  if (options.origins.length === 0) return
  await app.register(cors, {
    origin: options.origins,
    methods: ['GET', 'HEAD'],
    allowedHeaders: [...BROWSER_SENDABLE_HEADERS],
    exposedHeaders: [...BROWSER_READABLE_HEADERS],
    maxAge: 600,
  })
}, { name: 'cors' })
