/*
 * How much CPU this process and its neighbours used: the machine is shared, so every result says how
 * busy the other processes were while it was measured.
 */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fmt } from './table.js'

/** A CPU reading: machine-wide busy time and this process's (with children), in clock ticks. Linux only. */
export interface CpuMark {
  wall: number
  busy: number
  own: number
}

export function cpuMark(): CpuMark | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    const busy = cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]!
    const self = readFileSync('/proc/self/stat', 'utf8')
    const fields = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number)
    // Fields 14-17 of /proc/<pid>/stat (utime stime cutime cstime) are at 11-14 after the ')'.
    const own = fields[11]! + fields[12]! + fields[13]! + fields[14]!
    return { wall: performance.now(), busy, own }
  } catch {
    return null
  }
}

/** CPU used by other processes since `since`, in average cores (null where unknown). */
export function foreignCores(since: CpuMark | null): number | null {
  const now = cpuMark()
  if (since === null || now === null) return null
  const seconds = (now.wall - since.wall) / 1000
  if (seconds <= 0) return null
  return Math.max(0, (now.busy - since.busy - (now.own - since.own)) / 100 / seconds)
}

/** CPU this process used since `since`, in average cores. */
export function ownCores(since: CpuMark | null): number | null {
  const now = cpuMark()
  if (since === null || now === null) return null
  const seconds = (now.wall - since.wall) / 1000
  return seconds <= 0 ? null : (now.own - since.own) / 100 / seconds
}

/** Measures the other processes' CPU per named section of a run, and says which sections to read with care. */
export class NeighbourWatch {
  readonly cores: Record<string, number | null> = {}
  private readonly run = cpuMark()

  async section<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const mark = cpuMark()
    const result = await fn()
    this.cores[name] = foreignCores(mark)
    return result
  }

  /** Closes the run: records `whole_run`, returns the report line. */
  finish(): string {
    this.cores.whole_run = foreignCores(this.run)
    const busiest = Object.entries(this.cores).filter(([k, v]) => k !== 'whole_run' && typeof v === 'number' && v >= 0.25)
    return (
      `other processes' CPU during the run: ${fmt(this.cores.whole_run ?? null, 2)} cores on average (of ${cpus().length})` +
      (busiest.length > 0 ? `; busy neighbours (≥ 0.25 cores) during ${busiest.map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}: treat those numbers with care` : '')
    )
  }
}
