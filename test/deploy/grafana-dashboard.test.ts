import { readFileSync } from 'node:fs'
import t from 'tap'
import { buildDashboard, DATASOURCE, serialiseDashboard } from './grafana-dashboard.js'
import {
  dashboardQueries,
  DASHBOARD_FILE,
  declaredFamilies,
  panelsOf,
  readDashboard,
  readRuleGroups,
  recordedNamesOf,
  SCRAPE_JOB,
  unknownMetrics,
  variableQueries,
} from './monitoring.js'

// deploy/grafana/nxcloud-bff.json checked offline, as ops import it: a dashboard Grafana reads, whose
// every panel queries the chosen data source for series the service declares. test/metrics/
// monitoring-queries.test.ts checks the same queries against a live scrape after traffic.

const dashboard = readDashboard()
const GRID_WIDTH = 24
const ROWS = ['Traffic', 'Cache', 'NxCloud', 'Latency', 'Breaker and queue', 'Rate limits and authentication', 'Process']

t.test('the committed JSON is what `npm run monitoring` writes', async (t) => {
  t.equal(readFileSync(DASHBOARD_FILE, 'utf8'), serialiseDashboard(buildDashboard()), 'run `npm run monitoring` and commit the result')
})

t.test('a dashboard of a recent schema, with a Prometheus data source variable and an instance variable', async (t) => {
  t.equal(dashboard.schemaVersion, 39)
  t.equal(dashboard.uid, 'nxcloud-bff')
  t.equal(dashboard['id'], null, 'no id: Grafana gives one on import')
  const [datasource, instance] = dashboard.templating.list
  t.match(datasource, { name: 'datasource', type: 'datasource', query: 'prometheus' })
  t.match(instance, { name: 'instance', type: 'query', datasource: DATASOURCE, includeAll: true, multi: true })
  t.same(variableQueries(dashboard).map(({ selector, label }) => [selector.metric, label]),
    [['nxcloud_bff_http_request_duration_seconds_count', 'instance']])
})

t.test('a row for each concern, every panel on the data source variable, laid out without overlap', async (t) => {
  const rows = dashboard.panels.filter((panel) => panel.type === 'row').map((row) => row.title)
  for (const row of ROWS) t.ok(rows.some((title) => title.startsWith(row)), `a row "${row}"`)
  const panels = panelsOf(dashboard).filter((panel) => panel.type !== 'row')
  const ids = new Set(panelsOf(dashboard).map((panel) => panel.id))
  t.equal(ids.size, panelsOf(dashboard).length, 'panel ids are unique')
  const cells = new Set<string>()
  for (const panel of panelsOf(dashboard)) {
    const { x, y, w, h } = panel.gridPos
    t.ok(x >= 0 && w > 0 && x + w <= GRID_WIDTH, `${panel.title}: within the grid`)
    for (let column = x; column < x + w; column++) {
      for (let line = y; line < y + h; line++) {
        const cell = `${column},${line}`
        if (cells.has(cell)) t.fail(`${panel.title} overlaps another panel at ${cell}`)
        cells.add(cell)
      }
    }
  }
  for (const panel of panels) {
    t.same(panel.datasource, DATASOURCE, `${panel.title}: the data source variable`)
    t.ok((panel.targets ?? []).length > 0, `${panel.title}: at least one query`)
    for (const target of panel.targets ?? []) t.same(target.datasource, DATASOURCE, `${panel.title} ${target.refId}`)
  }
})

t.test('every per-instance query is narrowed to the job and the chosen instances', async (t) => {
  for (const { source, expression } of dashboardQueries(dashboard)) {
    if (/[a-z_]+:[a-z_]+:/.test(expression)) continue
    t.match(expression, `job="${SCRAPE_JOB}",instance=~"$instance"`, source)
  }
})

t.test('every query reads series the service declares, or the rules record', async (t) => {
  const queries = [
    ...dashboardQueries(dashboard),
    ...variableQueries(dashboard).map(({ source, selector }) => ({ source, expression: selector.metric })),
  ]
  t.same(unknownMetrics(queries, await declaredFamilies(t), recordedNamesOf(readRuleGroups())), [])
})
