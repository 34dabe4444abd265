/* The peers benchmark's settings (from the command line): systems, workload groups, sizes, deadlines. */
import { parseArgs } from '../lib/args.js'

export const SYSTEMS = ['shoal', 'yjs', 'automerge-repo', 'automerge-repo-docs', 'orbitdb', 'gun']
export const GROUPS = { pair: ['w1', 'w2', 'w4', 'w5'], five: ['w3i', 'w3u'], steady: ['w6'] } as const
export type Group = keyof typeof GROUPS
export type WorkloadId = 'w1' | 'w2' | 'w3i' | 'w3u' | 'w4' | 'w5' | 'w6'
export const WORKLOADS: WorkloadId[] = ['w1', 'w2', 'w3i', 'w3u', 'w4', 'w5', 'w6']

export const args = parseArgs()
const { option } = args

export const DEFAULTS = { rows: 10_000, steadyRows: 100_000, steadySeconds: 60, deadlineS: 60, steadyDeadlineS: 240, runs: 3 }
export const N = Number(option('--rows') ?? DEFAULTS.rows)
export const STEADY_ROWS = Number(option('--steady-rows') ?? DEFAULTS.steadyRows)
export const STEADY_SECONDS = Number(option('--steady-seconds') ?? DEFAULTS.steadySeconds)
export const DEADLINE_MS = Number(option('--deadline-s') ?? DEFAULTS.deadlineS) * 1000
export const STEADY_DEADLINE_MS = Number(option('--steady-deadline-s') ?? DEFAULTS.steadyDeadlineS) * 1000
export const HOT = Math.max(1, Math.floor(N / 10))
/** Row engine of Shoal's table (`--shoal-engine`; the table has no text column, so any engine can hold it). */
export const SHOAL_ENGINE = option('--shoal-engine') ?? 'yjs'
/** Where the children write V8 CPU profiles (`--cpu-prof-dir`; one file per child process). */
export const CPU_PROF_DIR = option('--cpu-prof-dir') ?? null
if (!['yjs', 'automerge', 'columns'].includes(SHOAL_ENGINE)) throw new Error(`--shoal-engine must be yjs, automerge or columns (got '${SHOAL_ENGINE}')`)

export function label(w: WorkloadId, n = N): string {
  const k = (v: number): string => (v >= 1000 && v % 1000 === 0 ? `${v / 1000}k` : String(v))
  switch (w) {
    case 'w1':
      return `w1 ${k(n)} inserts A→B`
    case 'w2':
      return `w2 ${k(n)} updates A→B`
    case 'w3i':
      return `w3 ${k(n)} inserts A→4 peers`
    case 'w3u':
      return `w3 ${k(n)} updates A→4 peers`
    case 'w4':
      return `w4 2×${k(n / 2)} concurrent updates, ${k(Math.max(1, Math.floor(n / 10)))} hot rows`
    case 'w5':
      return `w5 catch-up after ${k(n)} updates offline`
    case 'w6':
      return `w6 load ${k(STEADY_ROWS)} rows A→B`
  }
}
