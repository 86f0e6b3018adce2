import t from 'tap'
import { preferredMediaType } from '../../src/http/content-negotiation.js'

const OFFERS = ['application/json', 'text/html'] as const

t.test('a browser\'s Accept prefers HTML; curl\'s, a client\'s and none get the first offer, JSON', async (t) => {
  const cases: Array<[string | undefined, string]> = [
    ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', 'text/html'],
    ['text/html', 'text/html'],
    ['text/*', 'text/html'],
    ['*/*', 'application/json'],
    ['application/json', 'application/json'],
    ['application/json, text/html', 'application/json'],
    ['text/html;q=0.5, application/json', 'application/json'],
    ['application/json;q=0.4, text/html;q=0.5', 'text/html'],
    ['TEXT/HTML', 'text/html'],
    [undefined, 'application/json'],
    ['', 'application/json'],
  ]
  for (const [accept, expected] of cases) t.equal(preferredMediaType(accept, OFFERS), expected, `Accept: ${accept ?? '(none)'}`)
})

t.test('the most specific range decides, and q=0 refuses an offer', async (t) => {
  t.equal(preferredMediaType('text/html;q=0, */*', OFFERS), 'application/json', 'html refused, anything else welcome')
  t.equal(preferredMediaType('application/json;q=0, text/*;q=0.1', OFFERS), 'text/html')
  t.equal(preferredMediaType('*/*;q=0.9, application/json;q=0.1', OFFERS), 'text/html', 'json named but weighed less than the wildcard')
})

t.test('an Accept that accepts none of the offers, or that does not parse, is disregarded: the first offer', async (t) => {
  for (const accept of ['image/png', 'text/html;q=0, application/json;q=0', 'garbage', ',,;q=', 'text/html;q=2', 'text/html;q=abc']) {
    t.equal(preferredMediaType(accept, OFFERS), 'application/json', `Accept: ${accept}`)
  }
})
