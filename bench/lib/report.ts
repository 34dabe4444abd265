/* The report a benchmark prints to stdout: what ran where, the table, the verdicts, and notes. */
import { machineLine } from './results.js'

export interface Report {
  /** e.g. `Shoal mesh benchmark`. */
  title: string
  quick: boolean
  seconds: number
  srcHash: string
  /** The sizes the numbers stand on, one line. */
  sizes: string
  table: string
  targets: string
  /** Closing lines (peak RSS, the neighbours' CPU, …). */
  notes: string[]
}

export function reportText(r: Report): string {
  return [
    '',
    `${r.title} — ${new Date().toISOString()} — ${r.quick ? 'quick' : 'full'} run in ${r.seconds.toFixed(0)} s`,
    `machine: ${machineLine()}; src ${r.srcHash}`,
    `sizes: ${r.sizes}`,
    '',
    r.table,
    '',
    'targets:',
    r.targets,
    '',
    ...r.notes,
    '',
  ].join('\n')
}
