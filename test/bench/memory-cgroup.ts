/**
 * A memory cgroup of the bench's own, for the memory row: the BFF runs under the memory limit the
 * Deployment gives it (deploy/kubernetes), as in production. Node sizes V8's heap from that limit
 * (`process.constrainedMemory()`): on a bare 24 GiB host V8 lets the heap grow to gigabytes before it
 * collects, which says nothing of the container. Made under the bench's own cgroup (v1's memory
 * controller or v2), where the machine lets it; otherwise the row runs without one, and says so.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The Deployment's memory limit (deploy/kubernetes/deployment.yaml; a test keeps the two equal). */
export const DEPLOYMENT_MEMORY_LIMIT_BYTES = 256 * 1024 * 1024

export interface MemoryCgroup {
  limitBytes: number
  /** The command that starts `command` inside the cgroup. */
  wrap (command: string, args: string[]): { command: string, args: string[] }
  remove (): void
}

const CGROUP_ROOT = '/sys/fs/cgroup'

export function createMemoryCgroup (limitBytes: number): MemoryCgroup | undefined {
  let own: string
  try {
    own = readFileSync('/proc/self/cgroup', 'utf8')
  } catch {
    return undefined
  }
  const name = `nxcloud-bff-bench-${process.pid}`
  const v1 = /^\d+:memory:(.*)$/m.exec(own)?.[1]
  const v2 = /^0::(.*)$/m.exec(own)?.[1]
  const candidates: Array<{ dir: string, limitFile: string }> = []
  if (v1 !== undefined) candidates.push({ dir: join(CGROUP_ROOT, 'memory', v1, name), limitFile: 'memory.limit_in_bytes' })
  if (v2 !== undefined) candidates.push({ dir: join(CGROUP_ROOT, v2, name), limitFile: 'memory.max' })
  for (const { dir, limitFile } of candidates) {
    try {
      mkdirSync(dir)
    } catch {
      continue
    }
    try {
      writeFileSync(join(dir, limitFile), String(limitBytes))
    } catch {
      rmdirSync(dir)
      continue
    }
    return {
      limitBytes,
      // The shell joins the cgroup, then becomes the command: the server is the cgroup's only process.
      wrap: (command, args) => ({ command: '/bin/sh', args: ['-c', 'echo $$ > "$0" && exec "$@"', join(dir, 'cgroup.procs'), command, ...args] }),
      remove: () => { try { rmdirSync(dir) } catch {} },
    }
  }
  return undefined
}
