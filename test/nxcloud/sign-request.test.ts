import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import t from 'tap'
import type { Test } from 'tap'
import { createNxCloudClient, PHONE_LIST_PATH, type NxCloudClient } from '../../src/nxcloud/nxcloud-client.js'
import { signRequest, stringToSign } from '../../src/nxcloud/sign-request.js'
import { fakeDate } from '../support/fake-date.js'

// The upstream's published known-answer vectors (shared/nxcloud/signing.md).
const VECTOR = {
  accessKey: 'fme2na3kdi3ki',
  action: 'send',
  bizType: '1',
  ts: '1655710885431',
  accessSecret: 'abciiiko2k3',
}
const VECTOR_BODY = '{"name":"牛小信","id":10001}'
const VECTOR_STRING = 'accessKey=fme2na3kdi3ki&action=send&bizType=1&ts=1655710885431&body={"name":"牛小信","id":10001}&accessSecret=abciiiko2k3'

const ACCESS_KEY = 'recorder-access-key'
const ACCESS_SECRET = 'recorder-secret-牛'
const SUCCESS_ENVELOPE = '{"code":0,"message":"ok","data":[]}'
const SIGNED_HEADER_NAMES = ['accesskey', 'action', 'biztype', 'ts', 'sign']
const BETWEEN_CALLS_MS = 5
const silentLog = pino({ level: 'silent' })

t.test('signRequest reproduces the upstream known-answer vectors', async (t) => {
  t.equal(signRequest({ ...VECTOR, body: VECTOR_BODY }), '87c3560d3331ae23f1021e2025722354')
  t.equal(signRequest({ ...VECTOR, body: '{"id":10001,"name":"牛小信"}' }), '7750759da06333f20d0640be09355e34',
    'key order changes the sign')
  t.equal(signRequest({ ...VECTOR, body: '{"id": 10001, "name": "牛小信"}' }), 'd0c24a9886c629330d7f3f2056c65bc2',
    'whitespace changes the sign')
})

t.test('stringToSign builds the documented string: sorted headers, body, then the secret', async (t) => {
  t.equal(stringToSign({ ...VECTOR, body: VECTOR_BODY }), VECTOR_STRING)
})

t.test('an empty body leaves out &body= entirely', async (t) => {
  const text = stringToSign({ ...VECTOR, body: '' })
  t.equal(text, 'accessKey=fme2na3kdi3ki&action=send&bizType=1&ts=1655710885431&accessSecret=abciiiko2k3')
  t.notMatch(text, '&body=')
  t.equal(signRequest({ ...VECTOR, body: '' }), md5(text))
})

interface RecordedRequest {
  method: string | undefined
  url: string | undefined
  headers: IncomingHttpHeaders
  rawBody: Buffer
}

type Answer = (request: RecordedRequest, req: IncomingMessage, res: ServerResponse) => void

const answerSuccess: Answer = (_request, _req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' })
  res.end(SUCCESS_ENVELOPE)
}

interface Recorder {
  url: string
  requests: RecordedRequest[]
}

// A bare upstream that keeps the exact bytes it received, so the test checks the sign against them.
async function startRecorder (t: Test, answer: Answer = answerSuccess): Promise<Recorder> {
  const requests: RecordedRequest[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request = { method: req.method, url: req.url, headers: req.headers, rawBody: Buffer.concat(chunks) }
      requests.push(request)
      answer(request, req, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, requests }
}

function startClient (t: Test, recorder: Recorder): NxCloudClient {
  const client = createNxCloudClient({
    baseUrl: recorder.url,
    accessKey: ACCESS_KEY,
    accessSecret: ACCESS_SECRET,
    timeoutMs: 2_000,
    connections: 1,
    protection: { maxConcurrency: 1, maxQueue: 10, maxAttempts: 3, breakerFailureRatio: 0.5, breakerMinCalls: 10, breakerWindowMs: 10_000, breakerOpenMs: 10_000 },
  })
  t.teardown(() => client.close())
  return client
}

function md5 (text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex')
}

function header (request: RecordedRequest, name: string): string {
  const value = request.headers[name.toLowerCase()]
  if (typeof value !== 'string') throw new Error(`header ${name} missing or repeated`)
  return value
}

// Written out from the documentation rather than through signRequest, so a wrong signer cannot agree with itself.
function expectedSign (request: RecordedRequest, secret: string): string {
  const headers = `accessKey=${header(request, 'accessKey')}&action=${header(request, 'action')}` +
    `&bizType=${header(request, 'bizType')}&ts=${header(request, 'ts')}`
  const body = request.rawBody.toString('utf8')
  return md5(`${headers}${body === '' ? '' : `&body=${body}`}&accessSecret=${secret}`)
}

function assertSignedAsSent (t: Test, request: RecordedRequest): void {
  t.equal(header(request, 'sign'), expectedSign(request, ACCESS_SECRET), 'the sign covers the exact bytes received')
  t.match(header(request, 'sign'), /^[0-9a-f]{32}$/)
  t.equal(header(request, 'accessKey'), ACCESS_KEY)
  t.equal(header(request, 'action'), 'phoneList')
  t.equal(header(request, 'bizType'), '2')
  t.match(header(request, 'ts'), /^\d{13}$/, 'ts is epoch milliseconds')
  t.equal(header(request, 'content-type'), 'application/json')
  t.equal(request.method, 'POST')
  t.equal(request.url, PHONE_LIST_PATH)
}

t.test('the client sends exactly the bytes it signed', async (t) => {
  const recorder = await startRecorder(t)
  const client = startClient(t, recorder)
  const appkey = 'tenant-牛小信-"quoted"'

  t.same(await client.fetchPhoneList(appkey, silentLog), [])

  t.equal(recorder.requests.length, 1)
  const [request] = recorder.requests
  if (request === undefined) return
  assertSignedAsSent(t, request)
  t.equal(request.rawBody.toString('utf8'), JSON.stringify({ appkey }))
  t.equal(Number(header(request, 'content-length')), request.rawBody.length, 'content-length counts UTF-8 bytes')
  t.equal(request.headers['accesssecret'], undefined, 'the secret is never sent')
  t.notOk(Object.values(request.headers).some((value) => String(value).includes(ACCESS_SECRET)),
    'no header carries the secret')
  t.notOk(request.rawBody.toString('utf8').includes(ACCESS_SECRET), 'the body does not carry the secret')
  t.same(Object.keys(request.headers).filter((name) => SIGNED_HEADER_NAMES.includes(name)).sort(),
    [...SIGNED_HEADER_NAMES].sort())
})

t.test('two consecutive calls carry different ts values, each signed afresh', async (t) => {
  // The client stamps ts with Date.now(): a fake Date moved between the calls, rather than a sleep.
  const clock = fakeDate(t)
  const recorder = await startRecorder(t)
  const client = startClient(t, recorder)

  await client.fetchPhoneList('demo-shop', silentLog)
  clock.tick(BETWEEN_CALLS_MS)
  await client.fetchPhoneList('demo-shop', silentLog)

  t.equal(recorder.requests.length, 2)
  const [first, second] = recorder.requests
  if (first === undefined || second === undefined) return
  assertSignedAsSent(t, first)
  assertSignedAsSent(t, second)
  t.ok(Number(header(second, 'ts')) > Number(header(first, 'ts')), 'the second ts is later')
  t.not(header(second, 'sign'), header(first, 'sign'), 'the same body signs differently under a new ts')
})

t.test('an attempt retried after a socket reset is signed again', async (t) => {
  let connectionsSeen = 0
  const recorder = await startRecorder(t, (request, req, res) => {
    connectionsSeen++
    if (connectionsSeen === 1) {
      // Hang up a little later, so a retry that signed afresh carries a later ts.
      setTimeout(() => req.socket.destroy(), BETWEEN_CALLS_MS)
      return
    }
    answerSuccess(request, req, res)
  })
  const client = startClient(t, recorder)

  t.same(await client.fetchPhoneList('demo-shop', silentLog), [], 'the retry succeeds')

  t.equal(recorder.requests.length, 2, 'one reset attempt and one retry')
  const [first, second] = recorder.requests
  if (first === undefined || second === undefined) return
  assertSignedAsSent(t, first)
  assertSignedAsSent(t, second)
  t.ok(Number(header(second, 'ts')) > Number(header(first, 'ts')), 'the retry carries a fresh ts')
  t.not(header(second, 'sign'), header(first, 'sign'), 'and so a fresh sign')
  t.equal(second.rawBody.toString('utf8'), first.rawBody.toString('utf8'), 'the same body is sent again')
})
