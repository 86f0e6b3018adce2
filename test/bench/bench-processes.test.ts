import { readFileSync } from 'node:fs'
import t from 'tap'
import { cpuMicrosFromStat, rssBytesFromStatus } from './bench-processes.js'

// /proc/<pid>/stat with a command name holding spaces and a parenthesis, utime 1234 and stime 56 ticks.
const STAT = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 12345 0 0 0 1234 56 0 0 20 0 11 0 987 1234567 8910'

t.test('CPU time is utime + stime, read after the command name whatever it holds', async (t) => {
  t.equal(cpuMicrosFromStat(STAT), (1234 + 56) * 10_000)
  t.throws(() => cpuMicrosFromStat('4242 (node) S 1'), /unreadable/)
})

t.test('CPU time of this very process agrees with process.cpuUsage()', async (t) => {
  const deadline = Date.now() + 200
  while (Date.now() < deadline) Math.sqrt(Math.random())
  const fromProc = cpuMicrosFromStat(readFileSync('/proc/self/stat', 'utf8'))
  const usage = process.cpuUsage()
  const fromNode = usage.user + usage.system
  // /proc counts in 10 ms ticks, rounded down for user and system separately.
  t.ok(fromProc <= fromNode && fromNode - fromProc < 30_000, `${fromProc} µs from /proc, ${fromNode} µs from Node`)
})

t.test('RSS is the VmRSS line, in bytes', async (t) => {
  t.equal(rssBytesFromStatus('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   52340 kB\nRssAnon:\t 1 kB\n'), 52_340 * 1024)
  t.throws(() => rssBytesFromStatus('Name:\tnode\n'), /VmRSS/)
  const own = rssBytesFromStatus(readFileSync('/proc/self/status', 'utf8'))
  t.ok(Math.abs(own - process.memoryUsage.rss()) < 16 * 1024 * 1024, 'this process: close to process.memoryUsage.rss()')
})
