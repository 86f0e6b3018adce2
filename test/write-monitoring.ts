/**
 * `npm run monitoring`: writes what is derived from the monitoring sources, for ops to load as it is:
 * deploy/kubernetes/prometheusrule.yaml (the groups of deploy/prometheus/nxcloud-bff.rules.yaml) and
 * deploy/grafana/nxcloud-bff.json (from test/deploy/grafana-dashboard.ts). The tests fail when either drifts.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { buildDashboard, serialiseDashboard } from './deploy/grafana-dashboard.js'
import { DASHBOARD_FILE, PROMETHEUS_RULE_FILE, prometheusRuleOf, readRuleGroups } from './deploy/monitoring.js'

await writeFile(PROMETHEUS_RULE_FILE, prometheusRuleOf(readRuleGroups()), 'utf8')
await mkdir(new URL('.', DASHBOARD_FILE), { recursive: true })
await writeFile(DASHBOARD_FILE, serialiseDashboard(buildDashboard()), 'utf8')
process.stdout.write(`wrote ${fileURLToPath(PROMETHEUS_RULE_FILE)} and ${fileURLToPath(DASHBOARD_FILE)}\n`)
