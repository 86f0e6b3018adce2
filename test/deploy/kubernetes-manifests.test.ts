import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Service } from 'kubernetes-models/v1/Service'
import type { IContainer } from 'kubernetes-models/v1/Container'
import { parseAllDocuments } from 'yaml'
import { DEPLOYMENT_MEMORY_LIMIT_BYTES } from '../bench/memory-cgroup.js'
import { ConfigError, ConfigSchema, loadConfig } from '../../src/config.js'
import { buildTestApp, startSimulator, testConfig } from '../helper.js'
import { SCRAPE_JOB } from './monitoring.js'
import { validatePodMonitor, validatePrometheusRule } from './monitoring-resources.js'

// deploy/kubernetes/ checked offline: every object against the Kubernetes API schema of its kind
// (kubernetes-models, generated from Kubernetes' OpenAPI document), then the facts that tie the
// objects to each other and to the service: probe paths, ports, secret files, shutdown timings.

const MANIFESTS_DIR = new URL('../../deploy/kubernetes/', import.meta.url)
const KUSTOMIZATION = 'kustomization.yaml'
const SCHEMAS = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
} as const
type Kind = keyof typeof SCHEMAS
// The Prometheus Operator's kinds: kubernetes-models has no schema for them, so they are checked structurally.
const CUSTOM_RESOURCE_CHECKS: Record<string, (object: unknown) => void> = {
  'monitoring.coreos.com/v1/PrometheusRule': validatePrometheusRule,
  'monitoring.coreos.com/v1/PodMonitor': validatePodMonitor,
}

interface Manifest {
  file: string
  object: { apiVersion: string, kind: string, metadata: { name: string }, [field: string]: unknown }
}

// Kubernetes reads YAML 1.1 (`defaultMode: 0440` is octal there).
function parseYaml (file: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(new URL(file, MANIFESTS_DIR), 'utf8'), { version: '1.1' })
  return documents.map((document) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map(String).join('; ')}`)
    return document.toJS() as unknown
  })
}

const manifestFiles = readdirSync(MANIFESTS_DIR).filter((file) => file.endsWith('.yaml') && file !== KUSTOMIZATION).sort()
const manifests: Manifest[] = manifestFiles.flatMap((file) => parseYaml(file).map((object) => ({ file, object: object as Manifest['object'] })))

/** Throws with every schema violation when `object` is not a valid object of its kind. */
function validate (object: Manifest['object']): void {
  const kind = `${object.apiVersion}/${object.kind}`
  const check = CUSTOM_RESOURCE_CHECKS[kind]
  if (check !== undefined) return check(object)
  const Model = SCHEMAS[kind as Kind] as (new (data: object) => { validate (): void }) | undefined
  if (Model === undefined) throw new Error(`no schema for ${kind}: add its kubernetes-models class to this test`)
  new Model(object).validate()
}

function only<K extends Kind> (kind: K): InstanceType<(typeof SCHEMAS)[K]> {
  const found = manifests.filter(({ object }) => `${object.apiVersion}/${object.kind}` === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return new SCHEMAS[kind](found[0]?.object as never) as InstanceType<(typeof SCHEMAS)[K]>
}

const deployment = only('apps/v1/Deployment')
const podSpec = deployment.spec?.template.spec
const container = podSpec?.containers[0] as IContainer
const envOf = (name: string): string | undefined => container.env?.find((variable) => variable.name === name)?.value
const configMap = only('v1/ConfigMap')

t.test('every manifest is a valid Kubernetes object of its kind', async (t) => {
  t.ok(manifests.length >= 5, `${manifests.length} objects in ${manifestFiles.join(', ')}`)
  for (const { file, object } of manifests) {
    t.doesNotThrow(() => validate(object), `${file}: ${object.kind} ${object.metadata.name}`)
  }
})

t.test('the schema check rejects a broken manifest', async (t) => {
  const broken = structuredClone(manifests.find(({ object }) => object.kind === 'Deployment')?.object) as Manifest['object']
  const spec = broken['spec'] as { template: { spec: { containers: Array<Record<string, unknown>> } } }
  const [first] = spec.template.spec.containers
  if (first === undefined) throw new Error('the Deployment has no container')
  first['lifecycle'] = { preStop: { sleep: { seconds: 'five' } } }
  first['ports'] = [{ name: 'http' }]
  t.throws(() => validate(broken), /seconds must be integer/)
  t.throws(() => validate({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }), /no schema for v1\/Pod/)
})

t.test('the structural check rejects a broken PrometheusRule and a broken PodMonitor', async (t) => {
  const rule = structuredClone(manifests.find(({ object }) => object.kind === 'PrometheusRule')?.object) as Manifest['object']
  const groups = (rule['spec'] as { groups: Array<{ name: string, rules: Array<Record<string, unknown>> }> }).groups
  const [first] = groups
  if (first === undefined || first.rules[0] === undefined) throw new Error('the PrometheusRule has no rule')
  first.rules[0]['alert'] = 'Both'
  first.rules.push({ alert: 'NoExpression', for: 'five minutes' })
  groups.push({ name: first.name, rules: [] })
  t.throws(() => { validate(rule) }, /exactly one of record and alert.*expr must be a PromQL expression.*for must be a duration.*is not unique.*rules must be a non-empty list/)
  const podMonitor = structuredClone(manifests.find(({ object }) => object.kind === 'PodMonitor')?.object) as Manifest['object']
  podMonitor['spec'] = { selector: {}, podMetricsEndpoints: [{ port: 9464 }] }
  t.throws(() => { validate(podMonitor) }, /matchLabels must be a map.*port must name a container port/)
})

t.test('the PodMonitor scrapes the Deployment\'s metrics port, under the job the rules and the dashboard select', async (t) => {
  const podMonitor = manifests.find(({ object }) => object.kind === 'PodMonitor')?.object as unknown as {
    spec: { jobLabel: string, selector: { matchLabels: Record<string, string> }, podMetricsEndpoints: Array<{ port: string, path?: string }> }
  }
  const podLabels = deployment.spec?.template.metadata?.labels ?? {}
  t.match(podLabels, podMonitor.spec.selector.matchLabels, 'it selects the Deployment\'s pods')
  t.equal(podLabels[podMonitor.spec.jobLabel], SCRAPE_JOB, 'the job label comes from a pod label whose value is the scrape job')
  t.same(podMonitor.spec.podMetricsEndpoints.map(({ port, path }) => [port, path]), [['metrics', '/metrics']])
  t.ok(container.ports?.some((port) => port.name === 'metrics'), 'a container port of that name')
})

t.test('kustomization.yaml applies exactly the manifests of the folder', async (t) => {
  const [kustomization] = parseYaml(KUSTOMIZATION) as Array<{ resources: string[], images: Array<{ name: string }> }>
  t.same([...kustomization?.resources ?? []].sort(), manifestFiles)
  t.same(kustomization?.images.map((image) => image.name), [container.image], 'its image override names the container image')
})

t.test('the Deployment runs at least two replicas, hardened', async (t) => {
  t.ok((deployment.spec?.replicas ?? 0) >= 2)
  t.match(podSpec?.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
  t.equal(podSpec?.automountServiceAccountToken, false)
  t.match(container.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
  })
  t.ok(container.resources?.requests?.['cpu'] !== undefined && container.resources.requests['memory'] !== undefined, 'requests')
  t.ok(container.resources?.limits?.['memory'] !== undefined, 'a memory limit')
  t.equal(container.resources?.limits?.['memory'], `${DEPLOYMENT_MEMORY_LIMIT_BYTES / 1024 / 1024}Mi`, 'the limit the benchmark\'s memory row runs under')
})

t.test('the probes ask the paths the service answers, on the port it listens on', async (t) => {
  const httpPort = container.ports?.find((port) => port.name === 'http')
  t.equal(String(httpPort?.containerPort), envOf('PORT'))
  const probes = { startup: container.startupProbe, liveness: container.livenessProbe, readiness: container.readinessProbe }
  t.equal(probes.liveness?.httpGet?.path, '/healthz')
  t.equal(probes.readiness?.httpGet?.path, '/readyz')
  const simulator = await startSimulator(t)
  const { app } = await buildTestApp(t, testConfig(simulator))
  for (const [name, probe] of Object.entries(probes)) {
    t.equal(probe?.httpGet?.port, 'http', `${name} probe port`)
    const response = await app.inject({ method: 'GET', url: probe?.httpGet?.path ?? '' })
    t.equal(response.statusCode, 200, `${name} probe: GET ${probe?.httpGet?.path ?? ''}`)
  }
})

t.test('the preStop sleep is the drain delay, and the grace period outlasts sleep, drain and close', async (t) => {
  const sleepSeconds = container.lifecycle?.preStop?.sleep?.seconds ?? 0
  const drainMs = Number(envOf('SHUTDOWN_DRAIN_DELAY_MS'))
  const closeMs = Number(envOf('SHUTDOWN_TIMEOUT_MS'))
  t.ok(sleepSeconds > 0)
  t.equal(sleepSeconds * 1000, drainMs)
  t.ok((podSpec?.terminationGracePeriodSeconds ?? 30) > sleepSeconds + (drainMs + closeMs) / 1000)
})

t.test('the secret and the key file are mounted files, at the paths the *_FILE variables name', async (t) => {
  for (const variable of ['NXCLOUD_ACCESS_SECRET_FILE', 'API_KEYS_FILE']) {
    const path = envOf(variable) ?? ''
    const mount = container.volumeMounts?.find((candidate) => path.startsWith(`${candidate.mountPath}/`))
    const volume = podSpec?.volumes?.find((candidate) => candidate.name === mount?.name)
    const item = volume?.secret?.items?.find((candidate) => `${mount?.mountPath}/${candidate.path}` === path)
    t.ok(volume?.secret?.secretName, `${variable}=${path} is in a Secret volume`)
    t.ok(item, `${variable}=${path} is one of its items`)
    t.equal(mount?.readOnly, true)
    // A subPath mount is never updated: a rotated key file would not reach the running service.
    t.equal(mount?.subPath, undefined)
    t.equal(volume?.secret?.defaultMode, 0o440, 'readable by the owner and the pod group only')
  }
  t.notOk(container.env?.some((variable) => variable.name === 'NXCLOUD_ACCESS_SECRET'), 'the secret is not a variable')
})

t.test('every variable set is one the service reads, and together they are a valid configuration', async (t) => {
  t.same(container.envFrom, [{ configMapRef: { name: configMap.metadata?.name } }])
  const variables: Record<string, string> = { ...configMap.data }
  for (const variable of container.env ?? []) variables[variable.name] = variable.value ?? ''
  for (const name of Object.keys(variables)) t.ok(name in ConfigSchema.properties, `${name} is in ConfigSchema`)

  t.throws(() => loadConfig({ ...variables, NXCLOUD_ACCESS_SECRET_FILE: undefined, NXCLOUD_ACCESS_SECRET: 'live-secret' }),
    ConfigError, 'the placeholder access key is refused until the operator sets it')
  const directory = mkdtempSync(join(tmpdir(), 'nxcloud-bff-manifest-'))
  t.teardown(() => rmSync(directory, { recursive: true, force: true }))
  writeFileSync(join(directory, 'access-secret'), 'live-secret\n')
  const config = loadConfig({
    ...variables,
    NXCLOUD_ACCESS_KEY: 'live-access-key',
    NXCLOUD_ACCESS_SECRET_FILE: join(directory, 'access-secret'),
  })
  t.equal(config.SHUTDOWN_DRAIN_DELAY_MS, Number(envOf('SHUTDOWN_DRAIN_DELAY_MS')))
})

t.test('the Service, the budget and the autoscaler select and target the Deployment', async (t) => {
  const podLabels = deployment.spec?.template.metadata?.labels ?? {}
  const service = only('v1/Service')
  const budget = only('policy/v1/PodDisruptionBudget')
  const autoscaler = only('autoscaling/v2/HorizontalPodAutoscaler')
  t.match(podLabels, service.spec?.selector ?? { missing: true })
  t.match(podLabels, budget.spec?.selector?.matchLabels ?? { missing: true })
  t.same(deployment.spec?.selector.matchLabels, budget.spec?.selector?.matchLabels)
  const containerPorts = new Set(container.ports?.map((port) => port.name))
  for (const port of service.spec?.ports ?? []) t.ok(containerPorts.has(String(port.targetPort)), `Service port ${port.name} targets a named container port`)
  t.match(autoscaler.spec?.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata?.name })
  t.ok((autoscaler.spec?.minReplicas ?? 1) >= 2, 'never one replica: the budget would block every eviction')
  t.equal(budget.spec?.maxUnavailable, 1)
})

// The metrics endpoint comes with METRICS_PORT; until the service has it there is nothing to compare.
const metricsPortSchema = (ConfigSchema.properties as Record<string, { default?: unknown }>)['METRICS_PORT']
t.test('Prometheus is pointed at the port the service serves metrics on', { skip: metricsPortSchema === undefined ? 'no METRICS_PORT' : false }, async (t) => {
  const port = Number(envOf('METRICS_PORT') ?? configMap.data?.['METRICS_PORT'] ?? metricsPortSchema?.default)
  t.equal(container.ports?.find((candidate) => candidate.name === 'metrics')?.containerPort, port)
  t.equal(deployment.spec?.template.metadata?.annotations?.['prometheus.io/port'], String(port))
})
