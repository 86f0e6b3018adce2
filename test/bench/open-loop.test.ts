import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { offerFixedRateFromC } from './open-loop.js'

// A real server over loopback: /ok answers 200, /busy 503, /closing 200 closing every third connection's
// use, /reset drops the connection; every answer has a Content-Length, as the service's hit does.
async function startServer (t: Test): Promise<{ port: string, requests: Array<{ url: string, apiKey: string | undefined }> }> {
  const requests: Array<{ url: string, apiKey: string | undefined }> = []
  const server: Server = createServer((request, response) => {
    requests.push({ url: request.url ?? '', apiKey: request.headers['x-api-key'] as string | undefined })
    if (request.url === '/reset') {
      request.socket.destroy()
      return
    }
    const closing = request.url === '/closing' && requests.length % 3 === 0
    response.writeHead(request.url === '/busy' ? 503 : 200, { 'content-length': 2, ...(closing ? { connection: 'close' } : {}) }).end('{}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return { port: String((server.address() as AddressInfo).port), requests }
}

const load = (path: string) => ({ ratePerSecond: 200, seconds: 0.25, connections: 4, path, headers: { 'x-api-key': 'k1' } })

t.test('sends rate x seconds requests with the given header fields and times every 2xx answer', async (t) => {
  const { port, requests } = await startServer(t)
  const result = await offerFixedRateFromC(`http://127.0.0.1:${port}`, load('/ok'))
  t.equal(result.answered, 50)
  t.equal(result.non2xx + result.errors, 0)
  t.same(requests, Array.from({ length: 50 }, () => ({ url: '/ok', apiKey: 'k1' })))
  t.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms, 'latencies recorded')
  t.ok(result.dispatchLagP99Ms >= 0, 'how late the generator was, recorded')
  t.ok(result.offeredPerSecond > 0)
})

t.test('counts answers that are not 2xx apart, and a dropped connection as an error', async (t) => {
  const { port } = await startServer(t)
  const busy = await offerFixedRateFromC(`http://127.0.0.1:${port}`, load('/busy'))
  t.match(busy, { answered: 0, non2xx: 50, errors: 0 })
  const reset = await offerFixedRateFromC(`http://127.0.0.1:${port}`, load('/reset'))
  t.match(reset, { answered: 0, non2xx: 0, errors: 50 })
})

t.test('opens a connection again after an answer that says Connection: close', async (t) => {
  const { port, requests } = await startServer(t)
  const result = await offerFixedRateFromC(`http://127.0.0.1:${port}`, load('/closing'))
  t.match(result, { answered: 50, non2xx: 0, errors: 0 })
  t.equal(requests.length, 50)
})

t.test('fails with the reason when nothing listens, and refuses another host than loopback', async (t) => {
  const { port } = await startServer(t)
  const closed = createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const freePort = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  await t.rejects(offerFixedRateFromC(`http://127.0.0.1:${freePort}`, load('/ok')), /connect: Connection refused/)
  await t.rejects(offerFixedRateFromC(`http://localhost:${port}`, load('/ok')), /127\.0\.0\.1/)
})
