import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { median, offerFixedRate, percentile, sendAll } from './http-load.js'

// A real server over loopback: /ok answers 200, /busy 503, /reset drops the connection.
async function startServer (t: Test): Promise<{ origin: string, paths: string[] }> {
  const paths: string[] = []
  const server: Server = createServer((request, response) => {
    paths.push(request.url ?? '')
    if (request.url === '/reset') request.socket.destroy()
    else response.writeHead(request.url === '/busy' ? 503 : 200).end('{}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths }
}

t.test('percentile is nearest-rank over ascending values', async (t) => {
  const values = Array.from({ length: 100 }, (_value, index) => index + 1)
  t.equal(percentile(values, 0.5), 50)
  t.equal(percentile(values, 0.99), 99)
  t.equal(percentile(values, 1), 100)
  t.equal(percentile([7], 0.99), 7)
  t.ok(Number.isNaN(percentile([], 0.5)))
})

t.test('median of an odd and an even count', async (t) => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
})

t.test('offerFixedRate sends rate x seconds requests, each once, and times the 2xx ones', async (t) => {
  const { origin, paths } = await startServer(t)
  const result = await offerFixedRate(origin, { ratePerSecond: 200, seconds: 0.25, connections: 4, requestFor: (index) => ({ path: `/ok?${index}` }) })
  t.equal(result.answered, 50)
  t.same([...paths].sort(), Array.from({ length: 50 }, (_value, index) => `/ok?${index}`).sort())
  t.match(result, { non2xx: 0, errors: 0 })
  t.ok(result.p50Ms > 0 && result.p50Ms <= result.p99Ms, 'latencies recorded')
  t.ok(result.dispatchLagP99Ms >= 0, 'how late the generator was, recorded')
})

t.test('non-2xx answers and failed requests are counted apart, not timed', async (t) => {
  const { origin } = await startServer(t)
  const paths = ['/ok', '/busy', '/reset', '/ok']
  const result = await offerFixedRate(origin, { ratePerSecond: 400, seconds: 0.1, connections: 4, requestFor: (index) => ({ path: paths[index % 4] ?? '/ok' }) })
  t.match(result, { answered: 20, non2xx: 10, errors: 10 })
})

t.test('sendAll sends every request once, a few at a time', async (t) => {
  const { origin, paths } = await startServer(t)
  const result = await sendAll(origin, 30, 3, (index) => ({ path: `/ok?${index}`, method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }))
  t.equal(result.answered, 30)
  t.same([...paths].sort(), Array.from({ length: 30 }, (_value, index) => `/ok?${index}`).sort())
})
