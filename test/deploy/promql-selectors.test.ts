import t from 'tap'
import { labelValuesQueryOf, selectorsOf } from './promql-selectors.js'

t.test('selectors are found inside functions, aggregations and binary operations, with their matchers', async (t) => {
  const expression = `
    sum by (namespace, job) (rate(requests_total{route="/tenants/:appkey/phones",method=~"GET|HEAD",status!="503"}[5m]))
    / on (job) group_left (instance) sum without (code) (rate(requests_total[$__rate_interval] offset 1d))
    > bool (14.4 * 0.001) unless absent(up{job='svc'}) or vector(0) and histogram_quantile(0.99, sum by (le) (rate(d_bucket{le!=""}[5m:1m])))`
  t.same(selectorsOf(expression), [
    {
      metric: 'requests_total',
      matchers: [
        { label: 'route', operator: '=', value: '/tenants/:appkey/phones' },
        { label: 'method', operator: '=~', value: 'GET|HEAD' },
        { label: 'status', operator: '!=', value: '503' },
      ],
    },
    { metric: 'requests_total', matchers: [] },
    { metric: 'up', matchers: [{ label: 'job', operator: '=', value: 'svc' }] },
    { metric: 'd_bucket', matchers: [{ label: 'le', operator: '!=', value: '' }] },
  ])
})

t.test('recorded names with colons, comments, escapes in strings, and a name given as __name__', async (t) => {
  t.same(selectorsOf('level:metric:ratio_rate1h > 0.5 # a comment naming not_a_metric'), [{ metric: 'level:metric:ratio_rate1h', matchers: [] }])
  t.same(selectorsOf('x{a="q\\"uote,}", b=`raw\\`} + {__name__="y", c!~"z"}'), [
    { metric: 'x', matchers: [{ label: 'a', operator: '=', value: 'q"uote,}' }, { label: 'b', operator: '=', value: 'raw\\' }] },
    { metric: 'y', matchers: [{ label: 'c', operator: '!~', value: 'z' }] },
  ])
  t.same(selectorsOf('clamp(1 - a / b, 0, 1) * 1e3'), [{ metric: 'a', matchers: [] }, { metric: 'b', matchers: [] }])
})

t.test('a malformed selector is an error, not a silent pass', async (t) => {
  t.throws(() => selectorsOf('x{a="unterminated}'), /unterminated string/)
  t.throws(() => selectorsOf('x{a}'), /expected a matching operator/)
  t.throws(() => selectorsOf('{a="b"}'), /without a metric name/)
})

t.test('Grafana\'s label_values(selector, label)', async (t) => {
  t.same(labelValuesQueryOf('label_values(m{job="j"}, instance)'), {
    selector: { metric: 'm', matchers: [{ label: 'job', operator: '=', value: 'j' }] },
    label: 'instance',
  })
  t.throws(() => labelValuesQueryOf('query_result(up)'), /not a label_values/)
})
