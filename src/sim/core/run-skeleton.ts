import { checkRun, OwnCopies, type PeerFinal } from './checker.js'
import { divergenceSeries, emptySamples, type RowChange } from './divergence.js'
import { describeFault, faultSpan } from './faults.js'
import { Rng } from './rng.js'
import type { Roles } from './roles.js'
import type { FaultSpec, Scenario } from './scenario.js'
import type { FaultWindow, SimSummary } from './summary.js'
import { Workload, type HistoryOp, type PlannedOp } from './workload.js'

/*
 * One simulation run, whatever the mode: the fault windows and their schedule, the workload (a
 * Poisson process of operations on random running peers, recorded as a history), sampling (rows
 * changed, traffic), the heal, waiting for convergence, the checker and the summary. A mode (model:
 * in-memory peers in virtual time; real: real peers in wall-clock time) supplies its peers, its
 * clock and what differs: how a fault is put into force, how a write is made, what a peer holds.
 */

/** What the skeleton asks of every peer. */
export interface SimPeer {
  readonly index: number
  isUp(): boolean
  /** Whether the peer carries (table, partition) by the scenario (what the checker holds it to). */
  carriesByConfig(table: string, partition: string): boolean
}

export interface Traffic {
  gossipMessages: number
  gossipBytes: number
  syncMessages: number
  syncBytes: number
}

export interface RunMode<P extends SimPeer> {
  mode: SimSummary['mode']
  peers: readonly P[]
  /** Scenario ms since the run began. */
  now(): number
  /** Runs `fn` at scenario time `at` (not before now). */
  at(at: number, fn: () => void): void
  /** Lets the run go on until scenario time `t`: the model runs its events, the real stack sleeps. */
  advanceTo(t: number): Promise<void>
  /** How often convergence is checked once healed (scenario ms). */
  convergeStepMs: number
  /** Puts a fault into force; returns what lifts it. */
  applyFault(fault: FaultSpec, rng: Rng): () => void
  /** After a fault is lifted (the model reconnects peers, as new connections would). */
  faultLifted?(): void
  /** The fault's line in the summary (a mode says which faults it cannot inject). */
  describeFault?(fault: FaultSpec): string
  /** Whether `peer` holds the row alive now (the workload turns updates of absent rows into puts). */
  alive(peer: P, table: string, partition: string, key: string): boolean
  /** Makes the planned operation at `peer`, completing `entry` (status, life) now or later. */
  write(peer: P, planned: PlannedOp, entry: HistoryOp): void
  /** Rows changed since the last call, where, with their new fingerprint. */
  changes(): RowChange[]
  /** Traffic since the run began. */
  traffic(): Traffic
  /** A running peer's digest roots: 'table/partition' → hex. */
  roots(peer: P): Map<string, string>
  /** Ends what is left of the faults and waits until every peer is back and connected. */
  heal(): Promise<void>
  /** Each peer's final state, for the checker. */
  finals(): Promise<PeerFinal[]>
  /** Problems met on the way (made violations). */
  problems(): string[]
  traceHash(): string | null
  trace?(line: string): void
  /** Remarks for the user (the workload could not keep pace). */
  note?(message: string): void
  /** Deltas refused for their author's rights, when roles are modelled. */
  refusals?(): number
  replay: string
}

export interface SkeletonOptions {
  onProgress?: (fraction: number, label: string) => void
  /** What peers may write, when the scenario models roles (null: everything). */
  roles?: Roles | null
  /** Test hook: the history and the final states the checker judged. */
  inspect?: (run: { history: readonly HistoryOp[]; finals: readonly PeerFinal[] }) => void
}

/** Workload lateness (scenario ms) worth a note. */
const BEHIND_NOTE_MS = 250
const ZERO_ROOT = '0'.repeat(32)

export async function runSkeleton<P extends SimPeer>(scenario: Scenario, mode: RunMode<P>, options: SkeletonOptions = {}): Promise<SimSummary> {
  const wallStart = performance.now()
  const root = new Rng(scenario.seed)
  const { peers } = mode
  const roles = options.roles ?? null

  // Faults.
  const windows: FaultWindow[] = []
  const faultRng = root.fork('faults')
  let lastFaultEnd = 0
  for (const fault of scenario.faults) {
    const { end, lastEffect } = faultSpan(fault, scenario.durationMs)
    lastFaultEnd = Math.max(lastFaultEnd, lastEffect)
    windows.push({ kind: fault.kind, from: fault.at, to: fault.kind === 'join' ? null : end, detail: (mode.describeFault ?? describeFault)(fault) })
    mode.at(fault.at, () => {
      mode.trace?.(`fault ${fault.kind} start`)
      const lift = mode.applyFault(fault, faultRng)
      if (fault.kind === 'join') return
      mode.at(end, () => {
        mode.trace?.(`fault ${fault.kind} end`)
        lift()
        mode.faultLifted?.()
      })
    })
  }
  const healAt = Math.max(scenario.durationMs, lastFaultEnd)

  // Workload.
  const history: HistoryOp[] = []
  const own = new OwnCopies()
  const workload = new Workload(scenario.workload, scenario.tables, root.fork('workload'))
  const pickRng = root.fork('writers')
  const invoke = (): void => {
    const id = history.length
    const up = peers.filter((p) => p.isUp())
    if (up.length === 0) return
    // The writer is chosen first; the operation is then drawn among what it carries (and may write).
    const writer = pickRng.pick(up)
    const planned = workload.plan(id, (table, partition, key) => mode.alive(writer, table, partition, key))
    const table = planned.table.name
    if (!writer.carriesByConfig(table, planned.partition)) return
    const allowed = roles === null || roles.mayWrite(writer.index, table, planned.partition)
    if (!allowed && !roles!.writesOutsideRights(writer.index)) return
    const entry: HistoryOp = { id, peer: writer.index, at: mode.now(), kind: planned.kind, table, partition: planned.partition, key: planned.key, ...planned.record, status: 'invoked' }
    if (!allowed) entry.forbidden = true
    own.add(entry)
    history.push(entry)
    mode.write(writer, planned, entry)
    mode.trace?.(`op ${entry.id} ${entry.kind} p${entry.peer} ${table}/${entry.partition}/${entry.key} ${entry.status}`)
  }
  const ownCopy = (peer: number, table: string, partition: string): boolean => own.has(peer, table, partition)
  let behind = 0
  let planned = 0
  const next = (): void => {
    const gap = workload.nextGapMs()
    if (planned + gap >= scenario.durationMs) return
    planned += gap
    const at = planned
    mode.at(at, () => {
      behind = Math.max(behind, mode.now() - at)
      invoke()
      next()
    })
  }
  next()

  // Sampling: rows changed where since the last sample, and traffic.
  const samples = emptySamples()
  let last = { t: 0, messages: 0, bytes: 0 }
  const sample = (): void => {
    const now = mode.now()
    const t = mode.traffic()
    const messages = t.gossipMessages + t.syncMessages
    const bytes = t.gossipBytes + t.syncBytes
    const seconds = Math.max(now - last.t, 1) / 1000
    samples.t.push(Math.round(now))
    samples.up.push(peers.map((p) => p.isUp()))
    samples.changes.push(mode.changes())
    samples.messagesPerSec.push((messages - last.messages) / seconds)
    samples.bytesPerSec.push((bytes - last.bytes) / seconds)
    last = { t: now, messages, bytes }
  }

  // Convergence: every running carrier of each partition has the same digest root (but a peer's
  // own copy of a partition it wrote to outside its rights, which the others refuse).
  const converged = (): boolean => {
    const live = peers.filter((p) => p.isUp())
    const roots = live.map((p) => mode.roots(p))
    const parts = new Set<string>()
    for (const r of roots) for (const k of r.keys()) parts.add(k)
    for (const part of parts) {
      const cut = part.indexOf('/')
      const [table, partition] = [part.slice(0, cut), part.slice(cut + 1)]
      if (!scenario.tables.some((t) => t.name === table)) continue
      const seen = new Set<string>()
      live.forEach((p, i) => {
        if (p.carriesByConfig(table, partition) && !ownCopy(p.index, table, partition)) seen.add(roots[i]!.get(part) ?? ZERO_ROOT)
      })
      if (seen.size > 1) return false
    }
    return true
  }

  // Samples every sampleMs; once healed, convergence is checked every convergeStepMs, so the time
  // to converge is not rounded up to a sample.
  const span = healAt + scenario.settleMs / 4
  let healedAt: number | null = null
  let convergedAt: number | null = null
  let nextSample = scenario.sampleMs
  for (let t = Math.min(nextSample, healAt); ; ) {
    await mode.advanceTo(t)
    let now = mode.now()
    if (now >= nextSample) {
      sample()
      // Ticks missed while the process was busy are skipped, not bunched.
      while (nextSample <= now) nextSample += scenario.sampleMs
      const progress = healedAt === null ? now / span : (healAt + Math.min(now - healedAt, scenario.settleMs / 4)) / span
      options.onProgress?.(Math.min(0.99, progress), healedAt === null ? (now < healAt ? 'faults and workload' : 'healing') : 'converging after heal')
    }
    if (healedAt === null && now >= healAt) {
      if (behind > BEHIND_NOTE_MS) {
        mode.note?.(`the workload ran up to ${Math.round(behind)} ms behind schedule (this process could not keep pace with ${scenario.peers} peers); a larger timeScale keeps the scenario's timing`)
      }
      await mode.heal()
      healedAt = now = mode.now()
    }
    if (healedAt !== null) {
      if (converged()) {
        convergedAt = now
        break
      }
      if (now >= healedAt + scenario.settleMs) break
    }
    t = healedAt === null ? Math.min(nextSample, healAt) : Math.min(now + mode.convergeStepMs, nextSample)
  }
  const endAt = mode.now()
  if (samples.t.at(-1) !== Math.round(endAt)) sample()
  options.onProgress?.(1, 'checking')

  // Final states and the checker.
  const finals = await mode.finals()
  options.inspect?.({ history, finals })
  const violations = [...mode.problems(), ...checkRun(scenario.tables, history, finals)]
  if (convergedAt === null) violations.unshift(`not converged ${scenario.settleMs} ms after the network healed (at ${Math.round(healedAt ?? healAt)} ms)`)

  const summary: SimSummary = {
    name: scenario.name,
    mode: mode.mode,
    seed: scenario.seed,
    peers: scenario.peers,
    ok: violations.length === 0,
    violations,
    replay: mode.replay,
    traceHash: mode.traceHash(),
    ops: {
      invoked: history.length,
      acknowledged: history.filter((o) => o.status === 'ok').length,
      failed: history.filter((o) => o.status === 'failed').length,
      byKind: history.reduce<Record<string, number>>((acc, o) => ((acc[o.kind] = (acc[o.kind] ?? 0) + 1), acc), {}),
    },
    healedAt: Math.round(healedAt ?? healAt),
    convergedAt: convergedAt === null ? null : Math.round(convergedAt),
    timeToConvergeMs: convergedAt === null ? null : Math.max(0, Math.round(convergedAt - (healedAt ?? healAt))),
    traffic: trafficTotals(mode.traffic()),
    faults: windows,
    series: divergenceSeries(scenario.sampleMs, samples, finals, (peer, table, partition) => !ownCopy(peer, table, partition)),
    durationMs: Math.round(endAt),
    wallMs: 0,
  }
  if (roles !== null) {
    const forbidden = history.filter((o) => o.forbidden === true)
    summary.roles = { forbiddenWrites: forbidden.length, acknowledgedForbidden: forbidden.filter((o) => o.status === 'ok').length, refusals: mode.refusals?.() ?? 0, enforced: roles.enforced }
  }
  summary.wallMs = Math.round(performance.now() - wallStart)
  return summary
}

function trafficTotals(t: Traffic): SimSummary['traffic'] {
  return { messages: t.gossipMessages + t.syncMessages, bytes: t.gossipBytes + t.syncBytes, ...t }
}
