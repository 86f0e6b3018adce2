/** The path of a request target, without its query: what a problem's `instance` names. */
export function pathOf (url: string): string {
  const queryAt = url.indexOf('?')
  return queryAt === -1 ? url : url.slice(0, queryAt)
}
