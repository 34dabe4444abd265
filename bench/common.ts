/*
 * Helpers shared by the benchmarks: the V8 profiler around a timed section, a hash of the source
 * measured, and how much CPU this process and its neighbours used (the machine is shared).
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector'
import { join } from 'node:path'

type Post = (method: string, params: object, callback: (error: Error | null, result?: unknown) => void) => void

/** Runs `fn` under the V8 sampling profiler when `dir` is given, writing `<dir>/<name>.cpuprofile`. */
export async function profiled<T>(dir: string | undefined, name: string, fn: () => Promise<T>, log: (message: string) => void): Promise<T> {
  if (dir === undefined) return fn()
  const session = new Session()
  session.connect()
  const raw = session.post.bind(session) as unknown as Post
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((ok, fail) => raw(method, params, (error, result) => (error === null ? ok(result) : fail(error))))
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 200 })
  await post('Profiler.start')
  try {
    return await fn()
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown }
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile))
    session.disconnect()
    log(`wrote CPU profile ${join(dir, `${name}.cpuprofile`)}`)
  }
}

/** Identifies the source measured: a hash of every .ts file under `root`. */
export function sourceHash(root: string): string {
  const hash = createHash('sha256')
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.ts')) hash.update(path.slice(root.length)).update(readFileSync(path))
    }
  }
  try {
    walk(root)
    return hash.digest('hex').slice(0, 16)
  } catch {
    return 'unknown'
  }
}

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
