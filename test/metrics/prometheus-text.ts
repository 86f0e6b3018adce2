import { request } from 'undici'

/** One line of the Prometheus text format: `name{label="value",...} value`. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Scrape {
  status: number
  contentType: string | undefined
  text: string
  /** The families the exposition declares (`# TYPE name kind`). */
  families: Map<string, string>
  samples: Sample[]
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
const TYPE_LINE = /^# TYPE (\S+) (\S+)$/

export function parseExposition (text: string): Pick<Scrape, 'families' | 'samples'> {
  const families = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    const type = TYPE_LINE.exec(line)
    if (type !== null) families.set(type[1] as string, type[2] as string)
    const sample = SAMPLE_LINE.exec(line)
    if (sample === null || line.startsWith('#')) continue
    const labels: Record<string, string> = {}
    for (const [, name, value] of (sample[2] ?? '').matchAll(LABEL_PAIR)) labels[name as string] = JSON.parse(`"${value as string}"`) as string
    samples.push({ name: sample[1] as string, labels, value: Number(sample[3]) })
  }
  return { families, samples }
}

/** GET over a real socket, as Prometheus scrapes. */
export async function scrape (origin: string, path = '/metrics', method: 'GET' | 'POST' = 'GET'): Promise<Scrape> {
  const response = await request(`${origin}${path}`, { method })
  const text = await response.body.text()
  const contentType = response.headers['content-type']
  return { status: response.statusCode, contentType: typeof contentType === 'string' ? contentType : undefined, text, ...parseExposition(text) }
}

/** The value of the one sample with this name whose labels include `labels`; undefined when none. */
export function valueOf (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((sample) => sample.name === name &&
    Object.entries(labels).every(([label, value]) => sample.labels[label] === value))
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return matching[0]?.value
}
