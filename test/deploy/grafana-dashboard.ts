/**
 * The Grafana dashboard of deploy/grafana/nxcloud-bff.json, written by `npm run monitoring`: a row per
 * concern, each panel one or a few PromQL queries. Ops import the JSON as it is; a data source
 * variable picks their Prometheus and an instance variable narrows every per-instance panel.
 */
import type { GrafanaDashboard, GrafanaPanel, GrafanaVariable } from './monitoring.js'
import { SCRAPE_JOB } from './monitoring.js'

// Grafana 10.4/11: the schema version it writes itself; older Grafana migrates nothing it cannot read.
const SCHEMA_VERSION = 39
/** Every panel's data source: Grafana's `${datasource}` variable, not a JavaScript template. */
// eslint-disable-next-line no-template-curly-in-string
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' }
const PANEL_HEIGHT = 8
const GRID_WIDTH = 24
const PHONES_ROUTE = '/tenants/:appkey/phones'

type Unit = 'reqps' | 'percentunit' | 's' | 'bytes' | 'short' | 'ops'

interface Query {
  expr: string
  legend: string
}

interface PanelSpec {
  title: string
  description: string
  unit: Unit
  queries: Query[]
  /** Value names of a state gauge (the breaker), shown instead of numbers. */
  valueNames?: Record<number, string>
}

interface RowSpec {
  title: string
  panels: PanelSpec[]
}

/** A selector of the service's series on the chosen instances. */
function series (metric: string, matchers = ''): string {
  return `${metric}{job="${SCRAPE_JOB}",instance=~"$instance"${matchers === '' ? '' : `,${matchers}`}}`
}

const rate = (metric: string, matchers = '') => `rate(${series(metric, matchers)}[$__rate_interval])`
const phones = `route="${PHONES_ROUTE}"`
const quantile = (q: number, metric: string, by: string, matchers = '') =>
  `histogram_quantile(${q}, sum by (le${by === '' ? '' : `, ${by}`}) (${rate(metric, matchers)}))`

const SLOS: Array<[string, string]> = [
  ['phones 5xx', 'namespace_job:nxcloud_bff_phones_errors'],
  ['phones 503', 'namespace_job:nxcloud_bff_phones_refusals'],
  ['hits over 25 ms', 'namespace_job:nxcloud_bff_slow_hits'],
  ['NxCloud call errors', 'namespace_job:nxcloud_bff_upstream_errors'],
]
const BREAKER_OPEN = 'namespace_job:nxcloud_bff_upstream_breaker_open'

const ROWS: RowSpec[] = [
  {
    title: 'SLOs (every instance of the job; objectives in README "Operating")',
    panels: [
      {
        title: 'Bad-event ratios over 1 h',
        description: 'Each SLI\'s share of bad events over the last hour, as the recording rules compute it. Objectives: 5xx ≤ 0.1 %, 503 ≤ 0.5 %, slow hits ≤ 1 %, NxCloud errors ≤ 1 %, breaker open ≤ 0.5 % of the time.',
        unit: 'percentunit',
        queries: [
          ...SLOS.map(([legend, recorded]) => ({ expr: `${recorded}:ratio_rate1h{job="${SCRAPE_JOB}"}`, legend: `${legend} {{namespace}}` })),
          { expr: `${BREAKER_OPEN}:ratio_avg1h{job="${SCRAPE_JOB}"}`, legend: 'breaker open {{namespace}}' },
        ],
      },
      {
        title: 'Bad-event ratios over 3 days',
        description: 'The same over three days: the ratio the slow-burn tickets compare with the objective.',
        unit: 'percentunit',
        queries: [
          ...SLOS.map(([legend, recorded]) => ({ expr: `${recorded}:ratio_rate3d{job="${SCRAPE_JOB}"}`, legend: `${legend} {{namespace}}` })),
          { expr: `${BREAKER_OPEN}:ratio_avg3d{job="${SCRAPE_JOB}"}`, legend: 'breaker open {{namespace}}' },
        ],
      },
    ],
  },
  {
    title: 'Traffic',
    panels: [
      {
        title: 'GET /tenants/{appkey}/phones by status',
        description: 'Answers per second of the phone list, by HTTP status.',
        unit: 'reqps',
        queries: [{ expr: `sum by (status) (${rate('nxcloud_bff_http_request_duration_seconds_count', phones)})`, legend: '{{status}}' }],
      },
      {
        title: 'Requests by route and method',
        description: 'Every route; `unmatched` is 404 and 405 (no route).',
        unit: 'reqps',
        queries: [{ expr: `sum by (route, method) (${rate('nxcloud_bff_http_request_duration_seconds_count')})`, legend: '{{method}} {{route}}' }],
      },
      {
        title: 'Errors by status (every route)',
        description: '4xx and 5xx answers per second.',
        unit: 'reqps',
        queries: [{ expr: `sum by (status) (${rate('nxcloud_bff_http_request_duration_seconds_count', 'status=~"[45].."')})`, legend: '{{status}}' }],
      },
    ],
  },
  {
    title: 'Cache',
    panels: [
      {
        title: 'Lookups by result',
        description: 'hit: fresh; stale: served at once while refreshed; miss: NxCloud asked; negative: a remembered unknown appkey; error: the store failed.',
        unit: 'ops',
        queries: [{ expr: `sum by (result) (${rate('nxcloud_bff_cache_lookups_total')})`, legend: '{{result}}' }],
      },
      {
        title: 'Hit ratio',
        description: 'Fresh hits among lookups, and everything answered without waiting for NxCloud (stale and negative included).',
        unit: 'percentunit',
        queries: [
          { expr: `sum(${rate('nxcloud_bff_cache_lookups_total', 'result="hit"')}) / sum(${rate('nxcloud_bff_cache_lookups_total')})`, legend: 'fresh hits' },
          { expr: `sum(${rate('nxcloud_bff_cache_lookups_total', 'result=~"hit|stale|negative"')}) / sum(${rate('nxcloud_bff_cache_lookups_total')})`, legend: 'answered from the cache' },
        ],
      },
      {
        title: 'Redis and the change feed',
        description: 'Per instance: Redis ready (1) or not (0); change feed heard (1) or not (0: changes made elsewhere may be heard late). Redis mode only.',
        unit: 'short',
        queries: [
          { expr: `min by (instance) (${series('nxcloud_bff_redis_up')})`, legend: 'redis up {{instance}}' },
          { expr: `min by (instance) (${series('nxcloud_bff_cache_change_feed_listening')})`, legend: 'feed heard {{instance}}' },
        ],
      },
    ],
  },
  {
    title: 'NxCloud',
    panels: [
      {
        title: 'Calls by outcome and code',
        description: 'Each attempt that went out, and each call refused before one (breaker-open, shed); code is NxCloud\'s, "none" without one.',
        unit: 'ops',
        queries: [{ expr: `sum by (outcome, code) (${rate('nxcloud_bff_upstream_calls_total')})`, legend: '{{outcome}} {{code}}' }],
      },
      {
        title: 'Call latency by outcome',
        description: 'p50 and p99 of the attempts that went out.',
        unit: 's',
        queries: [
          { expr: quantile(0.5, 'nxcloud_bff_upstream_call_duration_seconds_bucket', 'outcome'), legend: 'p50 {{outcome}}' },
          { expr: quantile(0.99, 'nxcloud_bff_upstream_call_duration_seconds_bucket', 'outcome'), legend: 'p99 {{outcome}}' },
        ],
      },
      {
        title: 'Call error ratio',
        description: 'Attempts that failed (not ok, and not NxCloud\'s word on a tenant: 9000, 9008, 9010) among those that went out.',
        unit: 'percentunit',
        queries: [{
          expr: `sum(${rate('nxcloud_bff_upstream_calls_total', 'outcome!~"ok|breaker-open|shed",code!~"9000|9008|9010"')}) / sum(${rate('nxcloud_bff_upstream_calls_total', 'outcome!~"breaker-open|shed"')})`,
          legend: 'errors',
        }],
      },
    ],
  },
  {
    title: 'Latency',
    panels: [
      {
        title: 'GET /tenants/{appkey}/phones p50 and p99',
        description: 'Time to answer the phone list, hits and misses together.',
        unit: 's',
        queries: [
          { expr: quantile(0.5, 'nxcloud_bff_http_request_duration_seconds_bucket', '', `${phones},method="GET"`), legend: 'p50' },
          { expr: quantile(0.99, 'nxcloud_bff_http_request_duration_seconds_bucket', '', `${phones},method="GET"`), legend: 'p99' },
        ],
      },
      {
        title: 'Lists answered within 25 ms',
        description: 'Share of 200 and 304 answers of the phone list within 25 ms (the hit-latency objective\'s threshold; misses are slower).',
        unit: 'percentunit',
        queries: [{
          expr: `sum(${rate('nxcloud_bff_http_request_duration_seconds_bucket', `${phones},status=~"200|304",le="0.025"`)}) / sum(${rate('nxcloud_bff_http_request_duration_seconds_count', `${phones},status=~"200|304"`)})`,
          legend: 'within 25 ms',
        }],
      },
      {
        title: 'p99 by route',
        description: 'Every route\'s p99.',
        unit: 's',
        queries: [{ expr: quantile(0.99, 'nxcloud_bff_http_request_duration_seconds_bucket', 'route'), legend: '{{route}}' }],
      },
    ],
  },
  {
    title: 'Breaker and queue',
    panels: [
      {
        title: 'Circuit breaker',
        description: 'Per instance: 0 closed, 1 open (misses refused with 503), 2 half-open (one probe call).',
        unit: 'short',
        queries: [{ expr: `max by (instance) (${series('nxcloud_bff_upstream_breaker_state')})`, legend: '{{instance}}' }],
        valueNames: { 0: 'closed', 1: 'open', 2: 'half-open' },
      },
      {
        title: 'Calls in flight and queued',
        description: 'Per instance; at most NXCLOUD_MAX_CONCURRENCY running and NXCLOUD_MAX_QUEUE waiting, beyond which calls are shed.',
        unit: 'short',
        queries: [
          { expr: `sum by (instance) (${series('nxcloud_bff_upstream_calls_in_flight')})`, legend: 'in flight {{instance}}' },
          { expr: `sum by (instance) (${series('nxcloud_bff_upstream_calls_queued')})`, legend: 'queued {{instance}}' },
        ],
      },
      {
        title: 'Calls refused before going out',
        description: 'breaker-open: the breaker refused it; shed: the bulkhead was full.',
        unit: 'ops',
        queries: [{ expr: `sum by (outcome) (${rate('nxcloud_bff_upstream_calls_total', 'outcome=~"breaker-open|shed"')})`, legend: '{{outcome}}' }],
      },
    ],
  },
  {
    title: 'Rate limits and authentication',
    panels: [
      {
        title: '429 by reason',
        description: 'caller: an authenticated caller over its quota; address: requests without valid credentials, per client address.',
        unit: 'reqps',
        queries: [{ expr: `sum by (reason) (${rate('nxcloud_bff_rate_limited_total')})`, legend: '{{reason}}' }],
      },
      {
        title: '401 by reason',
        description: 'Authentication failures by reason (unknown-api-key, expired, bad-signature, missing-credentials, ...).',
        unit: 'reqps',
        queries: [{ expr: `sum by (reason) (${rate('nxcloud_bff_authentication_failures_total')})`, legend: '{{reason}}' }],
      },
    ],
  },
  {
    title: 'Process',
    panels: [
      {
        title: 'Resident memory and heap',
        description: 'RSS against the Deployment\'s 256 MiB limit, and the V8 heap in use.',
        unit: 'bytes',
        queries: [
          { expr: series('process_resident_memory_bytes'), legend: 'rss {{instance}}' },
          { expr: series('nodejs_heap_size_used_bytes'), legend: 'heap used {{instance}}' },
        ],
      },
      {
        title: 'Event-loop lag',
        description: 'p99 of the loop\'s delay between scrapes, and the delay measured at the scrape. Every request waits this long.',
        unit: 's',
        queries: [
          { expr: series('nodejs_eventloop_lag_p99_seconds'), legend: 'p99 {{instance}}' },
          { expr: series('nodejs_eventloop_lag_seconds'), legend: 'at scrape {{instance}}' },
        ],
      },
      {
        title: 'GC time per second',
        description: 'Seconds spent in garbage collection per second, by kind (major pauses are the long ones).',
        unit: 's',
        queries: [{ expr: `sum by (instance, kind) (${rate('nodejs_gc_duration_seconds_sum')})`, legend: '{{kind}} {{instance}}' }],
      },
      {
        title: 'CPU',
        description: 'CPU seconds per second, against the Deployment\'s limit of 1 and request of 0.25.',
        unit: 'short',
        queries: [{ expr: rate('process_cpu_seconds_total'), legend: '{{instance}}' }],
      },
    ],
  },
]

function panelOf (spec: PanelSpec, id: number, gridPos: GrafanaPanel['gridPos']): GrafanaPanel {
  const mappings = spec.valueNames === undefined
    ? []
    : [{ type: 'value', options: Object.fromEntries(Object.entries(spec.valueNames).map(([value, text], index) => [value, { text, index }])) }]
  return {
    id,
    type: 'timeseries',
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: { defaults: { unit: spec.unit, mappings, ...(spec.unit === 'percentunit' ? { min: 0 } : {}) }, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
    targets: spec.queries.map(({ expr, legend }, index) => ({
      refId: String.fromCharCode('A'.charCodeAt(0) + index),
      datasource: DATASOURCE,
      expr,
      legendFormat: legend,
      range: true,
    })),
  }
}

// Rows one under the other; a row's panels share its width, PANEL_HEIGHT high.
function layout (rows: RowSpec[]): GrafanaPanel[] {
  const panels: GrafanaPanel[] = []
  let y = 0
  let id = 1
  for (const row of rows) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: GRID_WIDTH, x: 0, y }, panels: [] })
    y += 1
    const width = GRID_WIDTH / row.panels.length
    row.panels.forEach((spec, index) => { panels.push(panelOf(spec, id++, { h: PANEL_HEIGHT, w: width, x: index * width, y })) })
    y += PANEL_HEIGHT
  }
  return panels
}

const VARIABLES: GrafanaVariable[] = [
  {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    includeAll: false,
    multi: false,
    options: [],
    refresh: 1,
    regex: '',
    skipUrlSync: false,
  },
  {
    name: 'instance',
    label: 'Instance',
    type: 'query',
    datasource: DATASOURCE,
    definition: `label_values(nxcloud_bff_http_request_duration_seconds_count{job="${SCRAPE_JOB}"}, instance)`,
    query: { query: `label_values(nxcloud_bff_http_request_duration_seconds_count{job="${SCRAPE_JOB}"}, instance)`, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    current: {},
    hide: 0,
    includeAll: true,
    allValue: '.*',
    multi: true,
    options: [],
    refresh: 2,
    regex: '',
    skipUrlSync: false,
    sort: 1,
  },
]

export function buildDashboard (): GrafanaDashboard {
  return {
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }],
    },
    description: 'nxcloud-bff: traffic, cache, NxCloud calls, breaker and queue, rate limits and authentication, process. Alerts and runbooks: deploy/prometheus/, docs/runbooks.md.',
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [],
    panels: layout(ROWS),
    refresh: '30s',
    schemaVersion: SCHEMA_VERSION,
    tags: ['nxcloud-bff'],
    templating: { list: VARIABLES },
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: '',
    title: 'nxcloud-bff',
    uid: 'nxcloud-bff',
    version: 1,
    weekStart: '',
  }
}

/** The committed form: two-space JSON with a final newline. */
export function serialiseDashboard (dashboard: GrafanaDashboard): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`
}
