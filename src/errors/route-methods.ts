/**
 * Which methods the registered routes answer on a concrete path, so that a path the service knows,
 * asked with a method it does not answer, is a 405 with `Allow` (RFC 9110 §15.5.6) rather than a 404.
 * It is only consulted once the router found nothing, so it costs nothing on the routes' own path.
 */
export class RouteMethods {
  readonly #methodsByPattern = new Map<string, Set<string>>()
  #compiled: Array<{ pattern: RegExp, methods: Set<string>, catchAll: boolean }> | undefined

  /** Records a route as Fastify's `onRoute` hook sees it (`/tenants/:appkey/phones`, `*`). */
  add (method: string | string[], url: string): void {
    const methods = this.#methodsByPattern.get(url) ?? new Set<string>()
    for (const one of Array.isArray(method) ? method : [method]) methods.add(one)
    this.#methodsByPattern.set(url, methods)
    this.#compiled = undefined
  }

  /**
   * The methods answered on `path`, in registration order; empty when no route names the path. A
   * catch-all route (CORS's `OPTIONS *`) adds its methods to a known path but makes no path known.
   */
  allowedOn (path: string): string[] {
    this.#compiled ??= [...this.#methodsByPattern].map(([url, methods]) =>
      ({ pattern: patternOf(url), methods, catchAll: url.endsWith('*') }))
    const matching = this.#compiled.filter(({ pattern }) => pattern.test(path))
    if (!matching.some(({ catchAll }) => !catchAll)) return []
    return [...new Set(matching.flatMap(({ methods }) => [...methods]))]
  }
}

// find-my-way's syntax as far as our routes use it: `:name` is one segment (possibly empty), `*` the rest.
function patternOf (url: string): RegExp {
  const source = url.split(/(:[A-Za-z0-9_]+|\*)/).map((part) => {
    if (part === '*') return '.*'
    if (part.startsWith(':')) return '[^/]*'
    return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }).join('')
  return new RegExp(`^${source}$`)
}
