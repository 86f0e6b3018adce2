import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { createAuthenticator, type AuthenticationOutcome, type Authenticator, type AuthenticatorOptions } from '../auth/authenticator.js'
import {
  AuthenticationFailure,
  AuthenticationUnavailable,
  hasScope,
  mayReadTenant,
  type Caller,
  type Scope,
} from '../auth/caller.js'
import { ProblemError } from '../errors/problem-error.js'
import { HttpHeaders } from '../http/headers.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling, once authenticated; undefined on open routes and when AUTH_DISABLED=true. */
    caller: Caller | undefined
    authenticationFailure: AuthenticationFailure | undefined
  }
  interface FastifyContextConfig {
    /** Marks a route as protected: the scope it needs, and the path parameter naming the tenant. */
    access?: RouteAccess
  }
}

export interface RouteAccess {
  scope: Scope
  tenantParam: string
}

export interface AccessPluginOptions extends Pick<AuthenticatorOptions, 'apiKeys' | 'jwt'> {
  disabled: boolean
}

/**
 * Caller authentication and tenant authorization for every route that declares `config.access`, in two
 * onRequest hooks around the rate limiter's (plugins/rate-limit.ts, registered before this plugin, so its
 * hook is already on the route): the caller is identified first, so that the limiter counts by caller
 * (and failed attempts by address); the verdict comes after it, before any body is read or validated,
 * so a refused request touches neither the cache nor NxCloud and learns nothing about the tenant or the
 * request's shape.
 */
export const accessPlugin = fp<AccessPluginOptions>(async function access (app, options) {
  app.decorateRequest('caller', undefined)
  app.decorateRequest('authenticationFailure', undefined)
  if (options.disabled) {
    app.log.warn('AUTH_DISABLED=true: every tenant is readable by anyone who can reach this service')
    return
  }
  const authenticator = createAuthenticator({
    apiKeys: options.apiKeys,
    jwt: options.jwt,
    log: app.log,
    onFailure: (reason) => { app.metrics.authenticationFailed(reason) },
  })
  app.addHook('onClose', async () => { authenticator.close() })
  const authenticate = authenticateHook(authenticator)

  app.addHook('onRoute', (route) => {
    const access = route.config?.access
    if (access === undefined) return
    route.onRequest = [authenticate, ...hooksOf(route.onRequest), authorizeHook(authenticator, access)]
  })
}, { name: 'access', dependencies: ['metrics', 'rate-limit'] })

function hooksOf<Hook> (hooks: Hook | Hook[] | undefined): Hook[] {
  if (hooks === undefined) return []
  return Array.isArray(hooks) ? hooks : [hooks]
}

// Written as a callback: a caller seen before is known without a promise.
function authenticateHook (authenticator: Authenticator): onRequestHookHandler {
  const unavailable = (error: unknown): Error => {
    if (!(error instanceof AuthenticationUnavailable)) return error as Error
    return new ProblemError('authenticationUnavailable', error.message, {
      headers: { [HttpHeaders.retryAfter.name]: authenticator.retryAfterSeconds() },
    })
  }
  return function authenticate (request, _reply, done) {
    let outcome: ReturnType<Authenticator['authenticate']>
    try {
      outcome = authenticator.authenticate(request.headers)
    } catch (error) {
      done(unavailable(error))
      return
    }
    if (outcome instanceof Promise) {
      outcome.then((settled) => { record(request, settled); done() }, (error: unknown) => { done(unavailable(error)) })
      return
    }
    record(request, outcome)
    done()
  }
}

function record (request: FastifyRequest, outcome: AuthenticationOutcome): void {
  if (outcome instanceof AuthenticationFailure) request.authenticationFailure = outcome
  else request.caller = outcome
}

function authorizeHook (authenticator: Authenticator, access: RouteAccess): onRequestHookHandler {
  return function authorize (request, reply, done) {
    done(refusalOf(authenticator, access, request, reply))
  }
}

/** 401 without a caller, 403 without the scope or the tenant; undefined when the caller may go on. */
function refusalOf (authenticator: Authenticator, access: RouteAccess, request: FastifyRequest, reply: FastifyReply): ProblemError | undefined {
  const caller = request.caller
  if (caller === undefined) {
    const failure = request.authenticationFailure ??
      new AuthenticationFailure('missing-credentials', undefined, 'This operation needs credentials')
    authenticator.reportFailure(request.log, request.ip, failure)
    reply.header(HttpHeaders.wwwAuthenticate.name, authenticator.challenge(failure))
    return new ProblemError('unauthenticated', failure.detail)
  }
  if (!hasScope(caller, access.scope)) {
    if (request.headers.authorization !== undefined) {
      reply.header(HttpHeaders.wwwAuthenticate.name, authenticator.insufficientScope(access.scope))
    }
    return new ProblemError('insufficientScope', `This operation needs the scope ${access.scope}`)
  }
  const appkey = (request.params as Record<string, string | undefined>)[access.tenantParam] ?? ''
  if (!mayReadTenant(caller, appkey)) return new ProblemError('tenantNotAllowed', `The caller may not read the tenant ${appkey}`)
  return undefined
}
