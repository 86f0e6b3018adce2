/** pino's numeric levels: the one table of them (config, access log and route levels read it). */
export const LogLevels = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const
export type LogLevel = keyof typeof LogLevels

/** The request id's name in every log line, as Fastify's `requestIdLogLabel`. */
export const REQUEST_ID_LOG_LABEL = 'requestId'
