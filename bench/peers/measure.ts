/*
 * Measuring one workload inside a child process: the clock from the first write to convergence
 * (detected by polling the adapter), the bytes every socket of the process wrote, the peak RSS, and
 * whether the final states are equal and as expected. What a child reports back to the parent.
 */
import { gc, RssSampler } from '../lib/memory.js'
import { sleep } from '../lib/poll.js'
import { wireTotal } from '../lib/wire.js'
import { sameRows, type StockRow, type SystemAdapter } from './adapter.js'
import type { Group, WorkloadId } from './config.js'

export interface WorkloadResult {
  converge_ms: number
  local_commit_ms: number
  wire_bytes: number
  peak_rss_bytes: number
  /** Mean time of one confirming snapshot (polling cost included in converge_ms). */
  snapshot_ms: number
  /** Final states of the peers involved are equal. */
  equal: boolean
  /** …and are what the workload must produce (exact state, or for w4 a plausible merge). */
  expected: boolean
  /** w5: how long startPeer took (included in converge_ms). */
  restart_ms?: number
  /** w6: bytes on the wire per minute while idle in sync, and per window. */
  steady_bytes_per_min?: number
  steady_windows_bytes?: number[]
}

export interface Dnf {
  dnf: string
}

export type Outcome = WorkloadResult | Dnf
export const isDnf = (o: Outcome | undefined): o is Dnf => o !== undefined && 'dnf' in o

export interface ChildResult {
  system: string
  group: Group
  topology?: string
  notes?: string
  rows: number
  start_ms: number
  idle_wire_bytes_per_s: number
  workloads: Partial<Record<WorkloadId, Outcome>>
  max_rss_bytes: number
  /** CPU other processes used during the run, in average cores (the machine may be shared). */
  foreign_cores: number | null
}

export class DnfError extends Error {}

export function progress(text: string): void {
  process.stderr.write(`@@PROGRESS ${text}\n`)
}

/**
 * Runs one workload: `write` issues the writes (resolving when committed locally), `converged`
 * is polled until true. `from` marks where the clock starts (default: before the first write).
 */
export async function measure(
  a: SystemAdapter,
  what: string,
  deadlineMs: number,
  write: () => Promise<void>,
  converged: (committed: boolean, snapshotMs: number[]) => Promise<boolean>,
  final: () => Promise<{ equal: boolean; expected: boolean }>,
  status: () => Promise<string>,
): Promise<WorkloadResult> {
  gc()
  const rss = new RssSampler()
  const bytes0 = wireTotal()
  const t0 = performance.now()
  let localMs = NaN
  let failure: unknown = null
  const writing = write().then(
    () => {
      localMs = performance.now() - t0
    },
    (e: unknown) => {
      failure = e
    },
  )
  const snapshotMs: number[] = []
  try {
    for (;;) {
      if (failure !== null) throw new DnfError(`writes failed: ${failure instanceof Error ? failure.message : String(failure)}`)
      if (await converged(!Number.isNaN(localMs), snapshotMs)) break
      if (performance.now() - t0 > deadlineMs) throw new DnfError(`not converged after ${(deadlineMs / 1000).toFixed(0)} s waiting for ${what}${await status().catch(() => '')}`)
      await sleep(10)
    }
  } finally {
    rss.stop()
  }
  const convergeMs = performance.now() - t0
  await writing
  const wire = wireTotal() - bytes0
  const peak = rss.peak
  return {
    converge_ms: convergeMs,
    local_commit_ms: localMs,
    wire_bytes: wire,
    peak_rss_bytes: peak,
    snapshot_ms: snapshotMs.length === 0 ? 0 : snapshotMs.reduce((x, y) => x + y, 0) / snapshotMs.length,
    ...(await final()),
  }
}

/** Polls: targets all hold `expected` (fingerprints against `source` first when the adapter has them). */
export function reaches(a: SystemAdapter, source: number, targets: number[], expected: readonly StockRow[]) {
  return async (committed: boolean, times: number[]): Promise<boolean> => {
    if (a.fingerprint !== undefined) {
      if (!committed) return false
      const f = await a.fingerprint(source)
      for (const t of targets) if ((await a.fingerprint(t)) !== f) return false
    } else {
      for (const t of targets) if ((await a.count(t)) !== expected.length) return false
    }
    for (const t of targets) {
      const s = performance.now()
      const ok = sameRows(await a.snapshot(t), expected)
      times.push(performance.now() - s)
      if (!ok) return false
    }
    return true
  }
}

export function finalAgainst(a: SystemAdapter, peers: number[], expected: readonly StockRow[]) {
  return async (): Promise<{ equal: boolean; expected: boolean }> => {
    const snaps = await Promise.all(peers.map((p) => a.snapshot(p)))
    return { equal: snaps.every((s) => sameRows(s, snaps[0]!)), expected: snaps.every((s) => sameRows(s, expected)) }
  }
}

export function counts(a: SystemAdapter, peers: number[]) {
  return async (): Promise<string> => ` (rows held: ${(await Promise.all(peers.map(async (p) => `peer ${p} ${await a.count(p)}`))).join(', ')})`
}
