import { sha256 } from '@noble/hashes/sha2.js'
import { ShoalError } from '../errors.js'
import type { RowEngine } from '../table/engine.js'
import { toHex } from '../table/hash.js'
import type { ResolvedSchema } from '../table/schema.js'
import { checkRun, rowId, type PeerFinal } from './checker.js'
import { ModelPeer } from './model-peer.js'
import { linkKey, SimNetwork } from './network.js'
import { Rng } from './rng.js'
import { cutOf, describeFault, faultSpan } from './faults.js'
import type { FaultSpec, Scenario } from './scenario.js'
import { VirtualScheduler } from './scheduler.js'
import type { FaultWindow, SimSummary } from './summary.js'
import { Workload, type HistoryOp } from './workload.js'

export interface RunOptions {
  /** Called as simulation time advances: fraction done (0…1) and a short label. */
  onProgress?: (fraction: number, label: string) => void
  /** Test hook: substitute row engines (e.g. a deliberately broken merge). */
  engineFor?: (name: ResolvedSchema['engine']) => RowEngine
  /** The command line that replays this run (put into the summary). */
  replay?: string
}

const encoder = new TextEncoder()
/** Resolution of the time-to-converge measurement after the network heals (simulation ms). */
const CONVERGENCE_STEP_MS = 10

/**
 * Model mode: N peers of MemoryReplica + the real gossip coalescer and anti-entropy code over a
 * simulated network in virtual time. Deterministic: the same scenario and seed give the same
 * event trace, whose hash is in the summary.
 */
export async function runModel(scenario: Scenario, options: RunOptions = {}): Promise<SimSummary> {
  const wallStart = performance.now()
  const root = new Rng(scenario.seed)
  const scheduler = new VirtualScheduler()
  const traceHash = sha256.create()
  const trace = (line: string): void => {
    traceHash.update(encoder.encode(`${scheduler.now().toFixed(3)} ${line}\n`))
  }
  const network = new SimNetwork(scheduler, root.fork('network'), scenario.network, trace)
  const dirty = new Map<number, Set<string>>()
  const peers: ModelPeer[] = []
  for (let i = 0; i < scenario.peers; i++) {
    dirty.set(i, new Set())
    peers.push(
      new ModelPeer({
        index: i,
        tables: scenario.tables,
        carries: scenario.carries[i] ?? {},
        scheduler,
        network,
        rng: root.fork(`peer-${i}`),
        gossip: scenario.gossip,
        antiEntropy: scenario.antiEntropy,
        peers: () => peers,
        trace,
        onRowChange: (peer, table, partition, key) => dirty.get(peer)!.add(rowId(table, partition, key)),
        ...(options.engineFor === undefined ? {} : { engineFor: options.engineFor }),
      }),
    )
  }

  // Peers that join late are down until then.
  const joins = new Map(scenario.faults.filter((f) => f.kind === 'join').map((f) => [f.peer, f.at]))
  for (const p of peers) {
    if (joins.has(p.index)) network.setUp(p.index, false)
    else p.start()
  }

  // Faults.
  const windows: FaultWindow[] = []
  const faultRng = root.fork('faults')
  let lastFaultEnd = 0
  for (const fault of scenario.faults) {
    const { end, lastEffect } = faultSpan(fault, scenario.durationMs)
    lastFaultEnd = Math.max(lastFaultEnd, lastEffect)
    windows.push({ kind: fault.kind, from: fault.at, to: fault.kind === 'join' ? null : end, detail: describeFault(fault) })
    scheduler.schedule(fault.at, () => {
      trace(`fault ${fault.kind} start`)
      const undo = applyFault(fault, peers, network, faultRng, scheduler)
      if (fault.kind !== 'join') {
        scheduler.schedule(end - fault.at, () => {
          trace(`fault ${fault.kind} end`)
          undo()
          for (const p of peers) p.reconnect()
        })
      }
    })
  }
  const healAt = Math.max(scenario.durationMs, lastFaultEnd)

  // Workload.
  const history: HistoryOp[] = []
  const workload = new Workload(scenario.workload, scenario.tables, root.fork('workload'))
  const pickRng = root.fork('writers')
  const next = (): void => {
    const gap = workload.nextGapMs()
    if (scheduler.now() + gap >= scenario.durationMs) return
    scheduler.schedule(gap, () => {
      const op = invoke()
      if (op !== null) trace(`op ${op.id} ${op.kind} p${op.peer} ${op.table}/${op.partition}/${op.key} ${op.status}`)
      next()
    })
  }
  const invoke = (): HistoryOp | null => {
    const id = history.length
    const up = peers.filter((p) => p.isUp())
    if (up.length === 0) return null
    // The writer is chosen first; the operation is then drawn among what it carries.
    const peer = pickRng.pick(up)
    const planned = workload.plan(id, (table, partition, key) => peer.replica.read(table, partition, key)?.alive === true)
    if (!peer.carriesByConfig(planned.table.name, planned.partition)) return null
    const entry: HistoryOp = { id, peer: peer.index, at: scheduler.now(), kind: planned.kind, table: planned.table.name, partition: planned.partition, key: planned.key, ...planned.record, status: 'invoked' }
    history.push(entry)
    try {
      const { state } = peer.replica.write(planned.table.name, planned.partition, planned.key, planned.op(peer.replica.read(planned.table.name, planned.partition, planned.key)))
      entry.status = 'ok'
      entry.life = state.life
    } catch (error) {
      if (!(error instanceof ShoalError)) throw error
      entry.status = 'failed'
      entry.error = error.code
    }
    return entry
  }
  next()

  // Sampling: which rows changed on which peer since the last sample, and traffic.
  const samples: { t: number[]; up: boolean[][]; changes: Array<Array<[number, string, string]>>; messages: number[]; bytes: number[] } = { t: [], up: [], changes: [], messages: [], bytes: [] }
  let lastTraffic = { messages: 0, bytes: 0 }
  const sample = (): void => {
    const changes: Array<[number, string, string]> = []
    for (const p of peers) {
      for (const id of dirty.get(p.index)!) {
        const [table, partition, key] = splitRowId(id)
        changes.push([p.index, id, rowFingerprint(p.replica.read(table, partition, key))])
      }
      dirty.get(p.index)!.clear()
    }
    samples.t.push(scheduler.now())
    samples.up.push(peers.map((p) => p.isUp()))
    samples.changes.push(changes)
    samples.messages.push(((network.traffic.messages - lastTraffic.messages) * 1000) / scenario.sampleMs)
    samples.bytes.push(((network.traffic.bytes - lastTraffic.bytes) * 1000) / scenario.sampleMs)
    lastTraffic = { messages: network.traffic.messages, bytes: network.traffic.bytes }
  }

  const converged = (): boolean => {
    const live = peers.filter((p) => p.isUp())
    const parts = new Set<string>()
    for (const p of live) for (const h of p.replica.heldPartitions()) parts.add(`${h.table}\u0000${h.partition}`)
    for (const part of parts) {
      const [table, partition] = part.split('\u0000') as [string, string]
      const roots = new Set(live.filter((p) => p.carriesByConfig(table, partition)).map((p) => toHex(p.replica.root(table, partition))))
      if (roots.size > 1) return false
    }
    return true
  }

  // Samples every sampleMs; after the heal, convergence is checked every CONVERGENCE_STEP_MS so the
  // time to converge is not rounded up to a sample.
  const end = healAt + scenario.settleMs
  let convergedAt: number | null = null
  let nextSample = scenario.sampleMs
  for (let t = Math.min(nextSample, healAt); ; ) {
    await scheduler.runUntil(t)
    if (t >= nextSample) {
      sample()
      nextSample += scenario.sampleMs
      options.onProgress?.(Math.min(1, t / (healAt + scenario.settleMs / 4)), t < healAt ? 'faults and workload' : 'converging after heal')
    }
    if (t >= healAt && converged()) {
      convergedAt = t
      if (samples.t.at(-1) !== t) sample()
      break
    }
    if (t >= end) break
    t = t < healAt ? Math.min(nextSample, healAt) : Math.min(t + CONVERGENCE_STEP_MS, nextSample)
  }
  options.onProgress?.(1, 'checking')

  // Final states and the checker.
  const finals: PeerFinal[] = peers.map((p) => {
    const rows = new Map<string, ReturnType<ModelPeer['replica']['read']> & object>()
    const roots = new Map<string, string>()
    for (const h of p.replica.heldPartitions()) {
      for (const [key] of p.replica.rows(h.table, h.partition)) rows.set(rowId(h.table, h.partition, key), p.replica.read(h.table, h.partition, key)!)
    }
    for (const r of p.replica.roots()) roots.set(`${r.table}/${r.partition}`, toHex(r.root))
    return { peer: p.index, up: p.isUp(), carries: (t: string, part: string) => p.carriesByConfig(t, part), roots, held: p.replica.heldPartitions(), rows }
  })
  const violations = checkRun(scenario.tables, history, finals)
  if (convergedAt === null) violations.unshift(`not converged ${scenario.settleMs} ms after the network healed (at ${healAt} ms)`)

  const series = divergenceSeries(scenario, peers.length, samples, finals)
  const summary: SimSummary = {
    name: scenario.name,
    mode: 'model',
    seed: scenario.seed,
    peers: scenario.peers,
    ok: violations.length === 0,
    violations,
    replay: options.replay ?? `shoal sim --seed ${scenario.seed}`,
    traceHash: toHex(traceHash.digest()),
    ops: {
      invoked: history.length,
      acknowledged: history.filter((o) => o.status === 'ok').length,
      failed: history.filter((o) => o.status === 'failed').length,
      byKind: history.reduce<Record<string, number>>((acc, o) => ((acc[o.kind] = (acc[o.kind] ?? 0) + 1), acc), {}),
    },
    healedAt: healAt,
    convergedAt,
    timeToConvergeMs: convergedAt === null ? null : Math.max(0, convergedAt - healAt),
    traffic: { ...network.traffic },
    faults: windows,
    series,
    durationMs: scheduler.now(),
    wallMs: Math.round(performance.now() - wallStart),
  }
  for (const p of peers) p.replica.dispose()
  return summary
}

function splitRowId(id: string): [string, string, string] {
  const a = id.indexOf('/')
  const b = id.indexOf('/', a + 1)
  return [id.slice(0, a), id.slice(a + 1, b), id.slice(b + 1)]
}

function rowFingerprint(state: { alive: boolean; life: number; values: Readonly<Record<string, unknown>> } | null): string {
  return state === null ? '' : JSON.stringify(state)
}

/** Rows differing from the final state, per peer per sample (replayed from the recorded changes). */
function divergenceSeries(
  scenario: Scenario,
  n: number,
  samples: { t: number[]; up: boolean[][]; changes: Array<Array<[number, string, string]>>; messages: number[]; bytes: number[] },
  finals: PeerFinal[],
): SimSummary['series'] {
  // The final state of each row: what the live carriers converged to (first live carrier).
  const final = new Map<string, string>()
  for (const f of finals) {
    if (!f.up) continue
    for (const [id, state] of f.rows) if (!final.has(id)) final.set(id, JSON.stringify(state))
  }
  const divergence: Array<Array<number | null>> = []
  for (let p = 0; p < n; p++) {
    const f = finals[p]!
    const current = new Map<string, string>()
    // Rows this peer should end with; absent ones count as differing until they arrive.
    const expected = [...final.keys()].filter((id) => {
      const [table, partition] = splitRowId(id)
      return f.carries(table, partition)
    })
    let differing = expected.length
    const line: Array<number | null> = []
    samples.t.forEach((_, s) => {
      for (const [peer, id, fp] of samples.changes[s]!) {
        if (peer !== p) continue
        const target = final.get(id)
        const before = (current.get(id) ?? '') === (target ?? '')
        current.set(id, fp)
        const after = fp === (target ?? '')
        if (before && !after) differing++
        else if (!before && after) differing--
      }
      line.push(samples.up[s]![p] ? differing : null)
    })
    divergence.push(line)
  }
  return { intervalMs: scenario.sampleMs, t: samples.t, peers: Array.from({ length: n }, (_, i) => `p${i}`), divergence, messagesPerSec: samples.messages, bytesPerSec: samples.bytes }
}

/** Puts a fault into force; returns the function that lifts it. */
function applyFault(f: FaultSpec, peers: ModelPeer[], network: SimNetwork, rng: Rng, scheduler: VirtualScheduler): () => void {
  const n = peers.length
  switch (f.kind) {
    case 'partition':
    case 'isolate':
    case 'bridge':
    case 'ring':
      return network.addCut(cutOf(f, n, rng)!)
    case 'loss':
      return network.addLoss(f.rate, f.links)
    case 'duplicate':
      return network.addDuplication(f.rate, f.links)
    case 'delay':
      return network.addDelay(f.minMs, f.maxMs, f.links)
    case 'crash': {
      peers[f.peer]!.crash()
      return () => {
        peers[f.peer]!.start()
      }
    }
    case 'join':
      peers[f.peer]!.start()
      peers[f.peer]!.reconnect()
      return () => undefined
    case 'skew': {
      peers[f.peer]!.skewMs = f.ms
      return () => {
        peers[f.peer]!.skewMs = 0
      }
    }
    case 'swizzle': {
      const all: Array<[number, number]> = []
      for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) all.push([a, b])
      const chosen = rng.shuffle(all).slice(0, f.links)
      const cut = new Set<string>()
      const removeCut = network.addCut((a, b) => cut.has(linkKey(a, b)))
      const cancels: Array<() => void> = []
      chosen.forEach(([a, b], i) => cancels.push(scheduler.schedule(i * f.stepMs, () => cut.add(linkKey(a, b)))))
      const restoreAt = f.for ?? chosen.length * f.stepMs
      rng.shuffle([...chosen]).forEach(([a, b], i) => cancels.push(scheduler.schedule(restoreAt + i * f.stepMs, () => cut.delete(linkKey(a, b)))))
      return () => {
        for (const c of cancels) c()
        removeCut()
      }
    }
  }
}
