// RFC 9110 §12.5.1: a media range with q=0 is "not acceptable"; without q it weighs 1.
const DEFAULT_WEIGHT = 1
const WILDCARD = '*'

interface MediaRange {
  type: string
  subtype: string
  weight: number
}

/**
 * Which of `offers` (media types such as `text/html`, the server's favourite first) the Accept field
 * prefers (RFC 9110 §12.5.1): each offer weighs the q of the most specific range that matches it,
 * the heaviest wins, and a tie goes to the earlier offer. Without the field, or when it accepts none
 * of the offers, the first offer: RFC 9110 lets a server disregard Accept rather than answer 406.
 *
 * @example
 * preferredMediaType('text/html,application/xml;q=0.9,*\/*;q=0.8', ['application/json', 'text/html']) // 'text/html'
 * preferredMediaType('*\/*', ['application/json', 'text/html']) // 'application/json'
 */
export function preferredMediaType<Offer extends string> (accept: string | undefined, offers: readonly [Offer, ...Offer[]]): Offer {
  const [first] = offers
  if (accept === undefined || accept.trim() === '') return first
  const ranges = parseAccept(accept)
  let preferred = first
  let preferredWeight = 0
  for (const offer of offers) {
    const weight = weightOf(offer, ranges)
    if (weight > preferredWeight) {
      preferred = offer
      preferredWeight = weight
    }
  }
  return preferred
}

function parseAccept (accept: string): MediaRange[] {
  return accept.split(',').flatMap((element) => {
    const [range = '', ...parameters] = element.split(';')
    const [type, subtype] = range.trim().toLowerCase().split('/')
    if (type === undefined || type === '' || subtype === undefined || subtype === '') return []
    return [{ type, subtype, weight: weightParameterOf(parameters) }]
  })
}

function weightParameterOf (parameters: string[]): number {
  for (const parameter of parameters) {
    const [name, value] = parameter.split('=').map((part) => part.trim().toLowerCase())
    if (name !== 'q') continue
    const weight = Number(value)
    return Number.isFinite(weight) && weight >= 0 && weight <= 1 ? weight : 0
  }
  return DEFAULT_WEIGHT
}

// The most specific matching range decides: `text/html` over `text/*` over `*/*`.
function weightOf (offer: string, ranges: MediaRange[]): number {
  const [type = '', subtype = ''] = offer.split('/')
  let specificity = NO_MATCH
  let weight = 0
  for (const range of ranges) {
    const rangeSpecificity = specificityOf(range, type, subtype)
    if (rangeSpecificity > specificity) {
      specificity = rangeSpecificity
      weight = range.weight
    }
  }
  return weight
}

const NO_MATCH = -1

function specificityOf (range: MediaRange, type: string, subtype: string): number {
  if (range.type === WILDCARD && range.subtype === WILDCARD) return 0
  if (range.type !== type) return NO_MATCH
  if (range.subtype === WILDCARD) return 1
  return range.subtype === subtype ? 2 : NO_MATCH
}
