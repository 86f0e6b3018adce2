/**
 * The monitoring files ops load as they are (deploy/prometheus/, deploy/grafana/, the PrometheusRule
 * in deploy/kubernetes/), read for the tests and for `npm run monitoring`, and the check that every
 * series they query is one the service exports: no dead query.
 */
import { readFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { buildTestApp, startSimulator, testConfig, TEST_REDIS_URL } from '../helper.js'
import { parseExposition, type Sample } from '../metrics/prometheus-text.js'
import { labelValuesQueryOf, selectorsOf, type Selector } from './promql-selectors.js'

export const RULES_FILE = new URL('../../deploy/prometheus/nxcloud-bff.rules.yaml', import.meta.url)
/** The rules' promtool unit tests. */
export const RULE_TEST_FILES = [new URL('../../deploy/prometheus/nxcloud-bff.rules.test.yaml', import.meta.url)]
export const PROMETHEUS_RULE_FILE = new URL('../../deploy/kubernetes/prometheusrule.yaml', import.meta.url)
export const DASHBOARD_FILE = new URL('../../deploy/grafana/nxcloud-bff.json', import.meta.url)
export const RUNBOOKS_FILE = new URL('../../docs/runbooks.md', import.meta.url)

/** The scrape job the rules and the dashboard select the service's targets by (the PodMonitor sets it). */
export const SCRAPE_JOB = 'nxcloud-bff'

export interface Rule {
  record?: string
  alert?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

export interface RuleGroup {
  name: string
  rules: Rule[]
}

export function readRuleGroups (): RuleGroup[] {
  return (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: RuleGroup[] }).groups
}

export function alertsOf (groups: RuleGroup[]): Array<Rule & { alert: string }> {
  return groups.flatMap((group) => group.rules.filter((rule): rule is Rule & { alert: string } => rule.alert !== undefined))
}

export function recordedNamesOf (groups: RuleGroup[]): Set<string> {
  return new Set(groups.flatMap((group) => group.rules.flatMap((rule) => rule.record ?? [])))
}

const PROMETHEUS_RULE_HEADER = `# Generated from deploy/prometheus/nxcloud-bff.rules.yaml by \`npm run monitoring\`: edit that file, not
# this one (test/deploy/prometheus-rules.test.ts fails when they differ). The Prometheus Operator loads it;
# add the labels your Prometheus's ruleSelector asks for (kube-prometheus-stack: release: <its name>).
`

/** The PrometheusRule carrying exactly the groups of the rules file. */
export function prometheusRuleOf (groups: RuleGroup[]): string {
  const resource = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'nxcloud-bff', labels: { 'app.kubernetes.io/name': 'nxcloud-bff' } },
    spec: { groups },
  }
  return PROMETHEUS_RULE_HEADER + stringify(resource, { lineWidth: 0 })
}

/** A PromQL expression ops will run, and where it comes from. */
export interface MonitoringQuery {
  source: string
  expression: string
}

export function ruleQueries (groups: RuleGroup[]): MonitoringQuery[] {
  return groups.flatMap((group) => group.rules.map((rule) => ({
    source: `${group.name}: ${rule.alert ?? rule.record ?? '?'}`,
    expression: rule.expr,
  })))
}

export interface GrafanaPanel {
  id?: number
  type: string
  title: string
  datasource?: { type: string, uid: string }
  gridPos: { h: number, w: number, x: number, y: number }
  targets?: Array<{ refId: string, expr: string, legendFormat?: string, datasource?: { type: string, uid: string } }>
  panels?: GrafanaPanel[]
  [field: string]: unknown
}

export interface GrafanaVariable {
  name: string
  type: string
  query?: string | { query: string, refId?: string }
  definition?: string
  datasource?: { type: string, uid: string }
  [field: string]: unknown
}

export interface GrafanaDashboard {
  uid: string
  title: string
  schemaVersion: number
  panels: GrafanaPanel[]
  templating: { list: GrafanaVariable[] }
  [field: string]: unknown
}

export function readDashboard (): GrafanaDashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as GrafanaDashboard
}

/** Every panel, those inside collapsed rows included. */
export function panelsOf (dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...panel.panels ?? []])
}

export function dashboardQueries (dashboard: GrafanaDashboard): MonitoringQuery[] {
  return panelsOf(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => ({
    source: `panel "${panel.title}" ${target.refId}`,
    expression: target.expr,
  })))
}

/** The `label_values(...)` queries of the dashboard's variables, as the selector and label they read. */
export function variableQueries (dashboard: GrafanaDashboard): Array<{ source: string, selector: Selector, label: string }> {
  return dashboard.templating.list.filter((variable) => variable.type === 'query').map((variable) => {
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query ?? ''
    return { source: `variable $${variable.name}`, ...labelValuesQueryOf(query) }
  })
}

// Labels Prometheus attaches to every series of a target when it scrapes (the service never writes
// them), and series Prometheus makes itself for each target.
const TARGET_LABELS = new Set(['job', 'instance', 'namespace', 'pod', 'container', 'endpoint', 'service'])
const SCRAPE_SERIES = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped'])

/**
 * What a selector would find in a scrape of the service, said as problems (none: the selector is
 * alive). A metric must have samples; a label must be on some of them; an `=` value and an `=~`
 * pattern must match some sample's value (a negative matcher only needs its label). Recorded series
 * (`level:metric:operation`) must be recorded by a rule.
 */
export function problemsOfSelector (selector: Selector, samples: readonly Sample[], recorded: ReadonlySet<string>): string[] {
  const { metric, matchers } = selector
  const ownMatchers = matchers.filter((matcher) => !TARGET_LABELS.has(matcher.label))
  if (metric.includes(':')) return recorded.has(metric) ? [] : [`${metric} is recorded by no rule`]
  if (SCRAPE_SERIES.has(metric)) return ownMatchers.map((matcher) => `${metric} has no label ${matcher.label}`)
  const series = samples.filter((sample) => sample.name === metric)
  if (series.length === 0) return [`no series ${metric}`]
  return ownMatchers.flatMap(({ label, operator, value }) => {
    const values = series.flatMap((sample) => sample.labels[label] ?? [])
    if (values.length === 0) return [`${metric} has no label ${label}`]
    if (operator === '=' && !values.includes(value)) return [`${metric}{${label}="${value}"} matches no series (values: ${[...new Set(values)].join(', ')})`]
    if (operator === '=~' && !values.some((candidate) => new RegExp(`^(?:${value})$`).test(candidate))) {
      return [`${metric}{${label}=~"${value}"} matches no series (values: ${[...new Set(values)].join(', ')})`]
    }
    return []
  })
}

/** Every problem of every selector of these queries, prefixed with where the query comes from. */
export function deadQueries (queries: readonly MonitoringQuery[], samples: readonly Sample[], recorded: ReadonlySet<string>): string[] {
  return queries.flatMap(({ source, expression }) =>
    selectorsOf(expression).flatMap((selector) => problemsOfSelector(selector, samples, recorded).map((problem) => `${source}: ${problem}`)))
}

const HISTOGRAM_SERIES_SUFFIXES = ['_bucket', '_count', '_sum']

/**
 * Offline, before any traffic: each selector's metric is a family the service declares (`# TYPE`,
 * whose histograms read as `_bucket`, `_count`, `_sum`), a series Prometheus makes, or a recorded one.
 */
export function unknownMetrics (queries: readonly MonitoringQuery[], families: ReadonlyMap<string, string>, recorded: ReadonlySet<string>): string[] {
  const known = (metric: string) => families.has(metric) || SCRAPE_SERIES.has(metric) || recorded.has(metric) ||
    HISTOGRAM_SERIES_SUFFIXES.some((suffix) => metric.endsWith(suffix) && families.get(metric.slice(0, -suffix.length)) === 'histogram')
  return queries.flatMap(({ source, expression }) =>
    selectorsOf(expression).filter(({ metric }) => !known(metric)).map(({ metric }) => `${source}: ${metric} is not a series of the service`))
}

interface Teardown {
  teardown (fn: () => unknown): void
}

/** The families a fresh service declares in Redis mode (the mode with every series), before any traffic. */
export async function declaredFamilies (t: Teardown): Promise<Map<string, string>> {
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator, { REDIS_URL: TEST_REDIS_URL }))
  return parseExposition(await app.metrics.registry.metrics()).families
}
