import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import {
  alertsOf,
  declaredFamilies,
  PROMETHEUS_RULE_FILE,
  prometheusRuleOf,
  readRuleGroups,
  recordedNamesOf,
  ruleQueries,
  RULE_TEST_FILES,
  RULES_FILE,
  RUNBOOKS_FILE,
  unknownMetrics,
  type RuleGroup,
} from './monitoring.js'

// deploy/prometheus/ checked with Prometheus's own tool (Debian's `prometheus` package; .ci/run installs
// it), then the facts promtool cannot know: every alert tested both ways, documented, and the same rules
// in the PrometheusRule.

const PROMTOOL = process.env['PROMTOOL'] ?? 'promtool'
// promtool evaluates every rule at each minute of each test group's series: about 10 s on a quiet
// machine, several times that beside a CPU hog. A net against a hung process, not a measure.
const PROMTOOL_TIMEOUT_MS = 150_000
t.setTimeout(PROMTOOL_TIMEOUT_MS + 30_000)
const SEVERITIES = ['critical', 'warning']
// What a summary may name: where it happens and which bounded reason, never a tenant or a caller.
const SUMMARY_LABELS = new Set(['job', 'namespace', 'instance', 'code', 'reason'])
const RUNBOOKS_URL = 'https://git.example.com/nxcloud-bff/blob/main/docs/runbooks.md'
const SLO_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d']

interface PromtoolRun {
  status: number
  output: string
}

function promtool (...args: string[]): Promise<PromtoolRun> {
  return new Promise((resolve, reject) => {
    execFile(PROMTOOL, args, { timeout: PROMTOOL_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code === 'string') {
        reject(new Error(`${PROMTOOL} could not run (${error.code}): install Debian's prometheus package, or set PROMTOOL`))
        return
      }
      resolve({ status: typeof error?.code === 'number' ? error.code : 0, output: `${stdout}${stderr}` })
    })
  })
}

interface RuleTestFile {
  group_eval_order?: string[]
  tests: Array<{ name: string, alert_rule_test?: Array<{ alertname: string, exp_alerts: unknown[] }> }>
}

const groups = readRuleGroups()
const alerts = alertsOf(groups)

t.test('promtool check rules: the rules file is valid, and holds no duplicate rule', async (t) => {
  const { status, output } = await promtool('check', 'rules', fileURLToPath(RULES_FILE))
  t.equal(status, 0, output)
  t.match(output, /SUCCESS: \d+ rules found/)
  t.notMatch(output, /duplicate/i)
})

t.test('promtool test rules: every unit test passes', async (t) => {
  const { status, output } = await promtool('test', 'rules', ...RULE_TEST_FILES.map((file) => fileURLToPath(file)))
  t.equal(status, 0, output)
  t.notMatch(output, /FAILED/)
})

t.test('the unit tests order every group, the SLIs recorded before the alerts that read them', async (t) => {
  // Without an order promtool evaluates the groups in Go's map order, different from run to run: an
  // alert then reads the newest recording of an SLI in some runs and the one before it in others.
  const recorders = groups.filter((group) => group.rules.some((rule) => rule.record !== undefined)).map((group) => group.name)
  for (const file of RULE_TEST_FILES) {
    const order = (parse(readFileSync(file, 'utf8')) as RuleTestFile).group_eval_order ?? []
    t.same([...order].sort(), groups.map((group) => group.name).sort(), `${fileURLToPath(file)}: every group, once`)
    for (const group of groups.filter((each) => each.rules.some((rule) => rule.alert !== undefined))) {
      const late = recorders.filter((recorder) => order.indexOf(recorder) > order.indexOf(group.name))
      t.same(late, [], `${group.name}: evaluated after every group that records`)
    }
  }
})

t.test('every alert has at least one case where it fires and one where it stays silent', async (t) => {
  const cases = RULE_TEST_FILES.flatMap((file) => (parse(readFileSync(file, 'utf8')) as RuleTestFile).tests)
    .flatMap((test) => test.alert_rule_test ?? [])
  const names = new Set(alerts.map((alert) => alert.alert))
  t.same(cases.map(({ alertname }) => alertname).filter((name) => !names.has(name)), [], 'the tests name only alerts of the rules')
  for (const name of names) {
    const own = cases.filter((testCase) => testCase.alertname === name)
    t.ok(own.some((testCase) => testCase.exp_alerts.length > 0), `${name} fires`)
    t.ok(own.some((testCase) => testCase.exp_alerts.length === 0), `${name} stays silent`)
  }
})

t.test('every alert has a severity, a summary naming no tenant or caller, and a runbook section of its own', async (t) => {
  const runbooks = readFileSync(RUNBOOKS_FILE, 'utf8')
  const sections = new Set([...runbooks.matchAll(/^### (\S+)$/gm)].map(([, heading]) => heading as string))
  t.equal(alerts.length, new Set(alerts.map((alert) => alert.alert)).size, 'alert names are unique')
  for (const { alert, labels, annotations } of alerts) {
    t.ok(SEVERITIES.includes(labels?.['severity'] ?? ''), `${alert}: severity ${labels?.['severity'] ?? '(none)'}`)
    const summary = annotations?.['summary'] ?? ''
    t.ok(summary.length > 40, `${alert}: a summary`)
    const named = [...summary.matchAll(/\$labels\.([a-zA-Z_]+)/g)].map(([, label]) => label as string)
    t.same(named.filter((label) => !SUMMARY_LABELS.has(label)), [], `${alert}: its summary names only ${[...SUMMARY_LABELS].join(', ')}`)
    // GitHub's anchor of a heading that is one CamelCase word: the word in lower case.
    t.equal(annotations?.['runbook_url'], `${RUNBOOKS_URL}#${alert.toLowerCase()}`, `${alert}: its runbook link`)
    t.ok(sections.has(alert), `${alert}: docs/runbooks.md has a section "### ${alert}"`)
  }
  t.same([...sections].filter((section) => !alerts.some((alert) => alert.alert === section)), [], 'and no section for an alert that is gone')
})

t.test('each SLI is recorded over every window its burn-rate alerts read, and the alerts read only recorded SLIs', async (t) => {
  const recorded = recordedNamesOf(groups)
  const windowsBySli = new Map<string, string[]>()
  for (const name of recorded) {
    const match = /^(.+:ratio_(?:rate|avg))(\w+)$/.exec(name)
    if (match === null) continue
    windowsBySli.set(match[1] as string, [...windowsBySli.get(match[1] as string) ?? [], match[2] as string])
  }
  t.equal(windowsBySli.size, 5, 'five SLIs')
  for (const [sli, windows] of windowsBySli) t.same(windows, SLO_WINDOWS, sli)
  const burnAlerts = alerts.filter((alert) => alert.labels?.['slo'] !== undefined)
  t.equal(burnAlerts.length, windowsBySli.size * 2, 'a fast and a slow burn alert per SLO')
  for (const { alert, expr } of burnAlerts) {
    const read = [...expr.matchAll(/[a-z_]+:[a-z_]+:ratio_\w+/g)].map(([name]) => name)
    t.ok(read.length === 4 && read.every((name) => recorded.has(name)), `${alert} reads four recorded windows`)
  }
})

t.test('the rules read only series the service declares, Prometheus makes, or the rules record', async (t) => {
  t.same(unknownMetrics(ruleQueries(groups), await declaredFamilies(t), recordedNamesOf(groups)), [])
})

t.test('the PrometheusRule in deploy/kubernetes/ carries exactly the groups of the rules file', async (t) => {
  const text = readFileSync(PROMETHEUS_RULE_FILE, 'utf8')
  const resource = parse(text) as { spec: { groups: RuleGroup[] } }
  t.same(resource.spec.groups, groups, 'the same groups, rules, labels and annotations')
  t.equal(text, prometheusRuleOf(groups), 'as `npm run monitoring` writes it: run it and commit the result')
})
