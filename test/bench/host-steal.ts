/**
 * Steal: the time a virtual CPU wanted to run while the hypervisor ran another guest (the 8th time field
 * of a cpu line in /proc/stat). On this shared VM it is one reason a row's CPU per request or its p99
 * moves between rounds with no change of the build: a core taken away for a few milliseconds stalls the
 * server on it, and the answers due meanwhile queue. The bench prints the share stolen during each run
 * (of the measured server's core at saturation, of every core at the fixed rate), so that a run the host
 * disturbed can be told from a slow build.
 */
import { readFileSync } from 'node:fs'

export interface CpuTimes {
  /** Ticks stolen by the hypervisor. */
  steal: number
  /** Ticks of every kind (user, nice, system, idle, iowait, irq, softirq, steal). */
  total: number
}

// After the cpu name: user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice).
const TIME_FIELDS = 8
const STEAL_FIELD = 7

/** The times of one CPU (`cpu` its index) or of all of them (undefined), from the text of /proc/stat. */
export function cpuTimesFromStat (stat: string, cpu: number | undefined): CpuTimes {
  const name = cpu === undefined ? 'cpu' : `cpu${cpu}`
  const line = stat.split('\n').find((candidate) => candidate.startsWith(`${name} `))
  const times = line?.trim().split(/\s+/).slice(1, 1 + TIME_FIELDS).map(Number)
  if (times === undefined || times.length < TIME_FIELDS || times.some((time) => !Number.isFinite(time))) {
    throw new Error(`no readable ${name} line in /proc/stat`)
  }
  return { steal: times[STEAL_FIELD] ?? 0, total: times.reduce((sum, time) => sum + time, 0) }
}

export function readCpuTimes (cpu: number | undefined): CpuTimes {
  return cpuTimesFromStat(readFileSync('/proc/stat', 'utf8'), cpu)
}

/** The share of the time between two readings that was stolen (0 when no tick passed). */
export function stealShareBetween (before: CpuTimes, after: CpuTimes): number {
  const ticks = after.total - before.total
  return ticks > 0 ? (after.steal - before.steal) / ticks : 0
}

/** A stolen share as the bench prints it: percent, one decimal. */
export function stealPercent (share: number): string {
  return (share * 100).toFixed(1)
}
