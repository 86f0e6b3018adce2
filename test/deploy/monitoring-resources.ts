/**
 * Structural checks of the Prometheus Operator's custom resources (monitoring.coreos.com/v1), for which
 * kubernetes-models ships no schema: the fields the operator reads, their types, and the rules' own
 * constraints (a rule records or alerts, a duration is a Prometheus duration). Each throws one error
 * naming every problem it found.
 */

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/
const OPERATOR_API_VERSION = 'monitoring.coreos.com/v1'

type Problems = string[]

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

function checkStringMap (value: unknown, where: string, problems: Problems, keyPattern?: RegExp): void {
  if (value === undefined) return
  if (!isRecord(value)) {
    problems.push(`${where} must be a map of strings`)
    return
  }
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') problems.push(`${where}.${key} must be a string`)
    if (keyPattern !== undefined && !keyPattern.test(key)) problems.push(`${where}.${key} is not a valid name`)
  }
}

function checkHead (object: Record<string, unknown>, kind: string, problems: Problems): void {
  if (object['apiVersion'] !== OPERATOR_API_VERSION) problems.push(`apiVersion must be ${OPERATOR_API_VERSION}`)
  if (object['kind'] !== kind) problems.push(`kind must be ${kind}`)
  const metadata = object['metadata']
  if (!isRecord(metadata) || typeof metadata['name'] !== 'string' || !DNS_SUBDOMAIN.test(metadata['name'])) {
    problems.push('metadata.name must be a DNS subdomain name')
  } else {
    checkStringMap(metadata['labels'], 'metadata.labels', problems)
  }
}

function fail (kind: string, problems: Problems): void {
  if (problems.length > 0) throw new Error(`${kind}: ${problems.join('; ')}`)
}

function checkRule (rule: unknown, where: string, problems: Problems): void {
  if (!isRecord(rule)) {
    problems.push(`${where} must be an object`)
    return
  }
  const { record, alert, expr } = rule
  if ((record === undefined) === (alert === undefined)) problems.push(`${where} must have exactly one of record and alert`)
  if (record !== undefined && (typeof record !== 'string' || !METRIC_NAME.test(record))) problems.push(`${where}.record must be a metric name`)
  if (alert !== undefined && (typeof alert !== 'string' || alert === '')) problems.push(`${where}.alert must be a name`)
  if (typeof expr !== 'string' || expr.trim() === '') problems.push(`${where}.expr must be a PromQL expression`)
  if (rule['for'] !== undefined && (typeof rule['for'] !== 'string' || !DURATION.test(rule['for']))) problems.push(`${where}.for must be a duration`)
  if (record !== undefined && (rule['for'] !== undefined || rule['annotations'] !== undefined)) problems.push(`${where}: a recording rule has no for or annotations`)
  checkStringMap(rule['labels'], `${where}.labels`, problems, LABEL_NAME)
  checkStringMap(rule['annotations'], `${where}.annotations`, problems, LABEL_NAME)
  const known = new Set(['record', 'alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'])
  for (const field of Object.keys(rule)) if (!known.has(field)) problems.push(`${where}.${field} is not a rule field`)
}

/** Throws unless `object` is a PrometheusRule: spec.groups of uniquely named groups of valid rules. */
export function validatePrometheusRule (object: unknown): void {
  const problems: Problems = []
  if (!isRecord(object)) throw new Error('PrometheusRule: not an object')
  checkHead(object, 'PrometheusRule', problems)
  const spec = object['spec']
  const groups = isRecord(spec) ? spec['groups'] : undefined
  if (!Array.isArray(groups) || groups.length === 0) {
    problems.push('spec.groups must be a non-empty list')
  } else {
    const names = new Set<string>()
    groups.forEach((group: unknown, index) => {
      const where = `spec.groups[${index}]`
      if (!isRecord(group) || typeof group['name'] !== 'string' || group['name'] === '') {
        problems.push(`${where}.name must be a string`)
        return
      }
      if (names.has(group['name'])) problems.push(`${where}.name ${group['name']} is not unique`)
      names.add(group['name'])
      if (group['interval'] !== undefined && (typeof group['interval'] !== 'string' || !DURATION.test(group['interval']))) problems.push(`${where}.interval must be a duration`)
      const rules = group['rules']
      if (!Array.isArray(rules) || rules.length === 0) problems.push(`${where}.rules must be a non-empty list`)
      else rules.forEach((rule: unknown, ruleIndex) => { checkRule(rule, `${where}.rules[${ruleIndex}]`, problems) })
    })
  }
  fail('PrometheusRule', problems)
}

/** Throws unless `object` is a PodMonitor: a label selector and endpoints naming a port. */
export function validatePodMonitor (object: unknown): void {
  const problems: Problems = []
  if (!isRecord(object)) throw new Error('PodMonitor: not an object')
  checkHead(object, 'PodMonitor', problems)
  const spec = object['spec']
  if (!isRecord(spec)) {
    problems.push('spec must be an object')
  } else {
    if (spec['jobLabel'] !== undefined && typeof spec['jobLabel'] !== 'string') problems.push('spec.jobLabel must be a string')
    const selector = spec['selector']
    if (!isRecord(selector) || !isRecord(selector['matchLabels'])) problems.push('spec.selector.matchLabels must be a map')
    else checkStringMap(selector['matchLabels'], 'spec.selector.matchLabels', problems)
    const endpoints = spec['podMetricsEndpoints']
    if (!Array.isArray(endpoints) || endpoints.length === 0) {
      problems.push('spec.podMetricsEndpoints must be a non-empty list')
    } else {
      endpoints.forEach((endpoint: unknown, index) => {
        const where = `spec.podMetricsEndpoints[${index}]`
        if (!isRecord(endpoint) || typeof endpoint['port'] !== 'string') problems.push(`${where}.port must name a container port`)
        else if (endpoint['interval'] !== undefined && (typeof endpoint['interval'] !== 'string' || !DURATION.test(endpoint['interval']))) problems.push(`${where}.interval must be a duration`)
      })
    }
  }
  fail('PodMonitor', problems)
}
