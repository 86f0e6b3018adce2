/**
 * Where the benchmark's processes run. On a machine of a few cores, a server under load and the load
 * generator otherwise share every core: the scheduler moves them across cores many times a second, and
 * a server's CPU time per request then carries the other's caches and the migrations, a cost that swings
 * from one run to the next (paired bare/service ratios spread over 0.42–0.65 in one run on 2 cores,
 * against 0.51–0.63 pinned). So, when `taskset` is there and the machine has at least two cores, every
 * measured server runs on the last core and the bench itself (load generators, NxCloud simulator) and
 * its Redis on the others, as a load generator would run on a machine of its own. Every row is measured
 * the same way, baselines included.
 */
import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'
import { findOnPath } from '../support/executables.js'

export interface CpuPinning {
  /** The core every measured server runs on. */
  serverCpu: number
  /** The cores of the bench process (load generators) and of its Redis, as taskset's list. */
  benchCpus: string
}

/** The pinning `cpuCount` cores allow with `taskset` (undefined: one core, or no taskset). */
export function cpuPinningFor (cpuCount: number, hasTaskset: boolean): CpuPinning | undefined {
  if (!hasTaskset || cpuCount < 2) return undefined
  const serverCpu = cpuCount - 1
  return { serverCpu, benchCpus: serverCpu === 1 ? '0' : `0-${serverCpu - 1}` }
}

// Set by pinBenchProcess(): only `npm run bench` pins; the soak and the other scripts run several servers
// side by side, as production would, and leave placement to the scheduler.
let pinning: CpuPinning | undefined

/** Moves this process (every thread of it) to the bench's cores, and the servers started after it to theirs; BENCH_PIN_CPUS=false: neither. */
export function pinBenchProcess (): void {
  if (process.env['BENCH_PIN_CPUS'] === 'false') return
  pinning = cpuPinningFor(cpus().length, findOnPath('taskset') !== undefined)
  if (pinning === undefined) return
  execFileSync('taskset', ['-a', '-pc', pinning.benchCpus, String(process.pid)], { stdio: 'ignore' })
}

/** `command args` run on the core of measured servers, once the bench process is pinned; else as given. */
export function onServerCpu (command: string, args: string[]): { command: string, args: string[] } {
  return onCpus(pinning === undefined ? undefined : String(pinning.serverCpu), command, args)
}

/** The core measured servers run on; undefined when unpinned (they may then run on any). */
export function serverCpu (): number | undefined {
  return pinning?.serverCpu
}

/** `command args` run on the bench's cores (its Redis), once the bench process is pinned; else as given. */
export function onBenchCpus (command: string, args: string[]): { command: string, args: string[] } {
  return onCpus(pinning?.benchCpus, command, args)
}

function onCpus (cpuList: string | undefined, command: string, args: string[]): { command: string, args: string[] } {
  return cpuList === undefined ? { command, args } : { command: 'taskset', args: ['-c', cpuList, command, ...args] }
}

/** How the run was placed, for the report's method line. */
export function describePinning (): string {
  return pinning === undefined
    ? 'processes not pinned (one core, no taskset, or BENCH_PIN_CPUS=false)'
    : `each server pinned to CPU ${pinning.serverCpu}, the load generators and Redis to CPU ${pinning.benchCpus} (taskset)`
}
