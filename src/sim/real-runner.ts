import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ShoalError } from '../errors.js'
import { checkRun, rowId, type PeerFinal } from './checker.js'
import { RealNetwork } from './real-network.js'
import { fingerprint, RealPeer, type TrafficTotals } from './real-peer.js'
import { Rng } from './rng.js'
import { cutOf, describeFault, faultSpan } from './faults.js'
import { ScenarioError, type FaultSpec, type Scenario } from './scenario.js'
import type { FaultWindow, SimSummary } from './summary.js'
import { Workload, type HistoryOp } from './workload.js'

/*
 * Real-stack mode: N real Shoal peers (Peer: LevelDB store in a temp folder, libp2p with Noise,
 * yamux and gossipsub, the gossip replicator and anti-entropy) in this process, connected over
 * the in-memory libp2p transport, under the scenario's workload and faults, in wall-clock time.
 * The same checker as model mode judges the history and the final states.
 *
 * Faults in real-stack mode:
 *   partition, isolate, bridge, ring, swizzle — cuts: each peer's connection gater refuses peers
 *     across a cut (dials both ways), open connections across it are aborted when it begins, and
 *     the pairs are dialled again when it ends (anti-entropy then runs on the new connections);
 *   crash — the Peer is stopped (writes not yet committed fail; operations in flight stay
 *     'invoked' in the history) and started again on the same folder after `for`;
 *   join   — the peer starts at `at` with an empty store;
 *   skew   — no effect: wall clocks are not simulated (kept as a fault window saying so);
 *   loss, duplicate, delay — not injected (kept as fault windows saying so): the memory transport
 *     only has a fixed latency set when a peer starts listening, applied to every connection of that
 *     listener and to each buffer in turn (so it throttles rather than delays), and message-level
 *     faults would have to sit inside the replicator. Use model mode for these.
 * The scenario's network latency, jitter and gossip fanout are not applied either (the memory
 * transport delivers at once; gossipsub keeps its own mesh degree).
 *
 * Every time in the scenario is multiplied by `timeScale` (default 1) to give wall-clock ms;
 * everything reported (fault windows, samples, heal and convergence times) is in scenario ms.
 */

export interface RealRunOptions {
  /** Called as the run advances: fraction done (0…1) and a short label. */
  onProgress?: (fraction: number, label: string) => void
  /** The command line that replays this run (put into the summary). */
  replay?: string
  /** Keep the peers' data folders (their path is logged) instead of removing them. */
  keepData?: boolean
  /** Where the peers' log lines (refusals, failed anti-entropy rounds) go, prefixed with the peer. Without it, refusals are summed up on console.warn at the end. */
  log?: (message: string) => void
  /** Wall-clock ms per scenario ms (default 1; above 1 slows the scenario down for a loaded machine). */
  timeScale?: number
}

/** Workload lateness (scenario ms) worth a note suggesting a larger timeScale. */
const BEHIND_NOTE_MS = 250
/** Longest wait for the mesh to connect at the start and after healing (wall ms). */
const CONNECT_DEADLINE_MS = 30_000
/** Log lines about a connection that went away (a crash or a cut), not about a refused message. */
const CONNECTION_LOST = /stream (that )?is closed|stream closed while|stream reset|aborted|simulated network cut|connection (is )?clos/i
/** How often convergence is polled after the heal (wall ms). */
const CONVERGE_POLL_MS = 50

export async function runReal(scenario: Scenario, options: RealRunOptions = {}): Promise<SimSummary> {
  const wallStart = performance.now()
  const scale = options.timeScale ?? 1
  if (!(scale > 0) || !Number.isFinite(scale)) throw new ScenarioError(`timeScale must be a positive number (got ${scale})`)
  const clock = new WallClock(scale)
  const root = new Rng(scenario.seed)
  const dir = await mkdtemp(join(tmpdir(), 'shoal-sim-real-'))
  const runId = randomUUID().slice(0, 8)
  const problems: string[] = []
  const logLines: string[] = []
  const note = (message: string): void => {
    if (options.log !== undefined) options.log(message)
    else console.warn(`shoal: real-stack simulation '${scenario.name}': ${message}`)
  }
  const log = (index: number, message: string): void => {
    const line = `p${index}: ${message}`
    if (options.log !== undefined) options.log(line)
    else logLines.push(line)
  }

  const byId = new Map<string, number>()
  const peers: RealPeer[] = []
  const network = new RealNetwork(peers)
  for (let i = 0; i < scenario.peers; i++) {
    peers.push(
      new RealPeer({
        index: i,
        scenario,
        dir: join(dir, `p${i}`),
        listen: `/memory/shoal-sim-${runId}-p${i}`,
        timeScale: scale,
        allowed: (a, b) => network.allowed(a, b),
        indexOf: (id) => byId.get(id),
        log,
      }),
    )
  }
  const timeline = new Timeline(clock)
  const tasks = new Set<Promise<unknown>>()
  const track = (what: string, work: Promise<unknown>): void => {
    const p = work.catch((error: unknown) => {
      problems.push(`${what} failed: ${(error as Error).message}`)
    })
    tasks.add(p)
    void p.finally(() => tasks.delete(p))
  }
  /** Starts a peer (first time, restart or join) and connects it to the peers it may reach. */
  const startPeer = async (p: RealPeer): Promise<void> => {
    const via = peers.find((q) => q !== p && q.isUp() && network.allowed(p.index, q.index))
    await p.start(via === undefined ? [] : [via.address])
    await network.connectAll()
  }

  const history: HistoryOp[] = []
  const inflight = new Set<Promise<void>>()
  let sampler: Promise<void> = Promise.resolve()
  let sampling = false
  const samplerSleep: { wake: (() => void) | undefined } = { wake: undefined }
  try {
    // Peers, all but the late joiners, connected to each other before the clock starts.
    options.onProgress?.(0, 'starting peers')
    for (const p of peers) await p.prepare()
    for (const p of peers) byId.set(p.peerId, p.index)
    const joins = new Set(scenario.faults.filter((f) => f.kind === 'join').map((f) => f.peer))
    const first = peers.filter((p) => !joins.has(p.index))
    await Promise.all(first.map((p) => p.start(first[0] === p ? [] : [first[0]!.address])))
    await connectMesh(network, CONNECT_DEADLINE_MS)
    // Traffic is counted from here: starting up (catalog exchange, first rounds) is not part of the scenario.
    const baseline = totals(peers)
    const traffic = (): TrafficTotals => {
      const t = totals(peers)
      return { gossipMessages: t.gossipMessages - baseline.gossipMessages, gossipBytes: t.gossipBytes - baseline.gossipBytes, syncMessages: t.syncMessages - baseline.syncMessages, syncBytes: t.syncBytes - baseline.syncBytes }
    }
    clock.reset()

    // Faults.
    const windows: FaultWindow[] = []
    const faultRng = root.fork('faults')
    let lastFaultEnd = 0
    for (const fault of scenario.faults) {
      const { end, lastEffect } = faultSpan(fault, scenario.durationMs)
      lastFaultEnd = Math.max(lastFaultEnd, lastEffect)
      windows.push({ kind: fault.kind, from: fault.at, to: fault.kind === 'join' ? null : end, detail: describe(fault) })
      timeline.at(fault.at, () => {
        const undo = applyFault(fault, { peers, network, rng: faultRng, timeline, track, startPeer })
        if (fault.kind !== 'join') timeline.at(end, undo)
      })
    }
    const healAt = Math.max(scenario.durationMs, lastFaultEnd)

    // Workload: a Poisson process of operations, each on a random running peer, through the Table API.
    const workload = new Workload(scenario.workload, scenario.tables, root.fork('workload'))
    const pickRng = root.fork('writers')
    const invoke = (): void => {
      const id = history.length
      const up = peers.filter((p) => p.isUp())
      if (up.length === 0) return
      const writer = pickRng.pick(up)
      const planned = workload.plan(id, (table, partition, key) => writer.alive.get(rowId(table, partition, key)) === true)
      if (!writer.carriesByConfig(planned.table.name, planned.partition)) return
      const entry: HistoryOp = { id, peer: writer.index, at: clock.now(), kind: planned.kind, table: planned.table.name, partition: planned.partition, key: planned.key, ...planned.record, status: 'invoked' }
      history.push(entry)
      const generation = writer.generation
      const op = writer.write(planned).then(
        (state) => {
          entry.status = 'ok'
          entry.life = state.life
        },
        (error: unknown) => {
          // The writer crashed meanwhile: whether it took effect is unknown, so it stays invoked.
          if (writer.generation !== generation) return
          if (error instanceof ShoalError) {
            entry.status = 'failed'
            entry.error = error.code
          } else {
            problems.push(`operation #${id} (${entry.kind} ${entry.table}/${entry.partition}/${entry.key} at p${writer.index}) threw ${(error as Error).message}`)
          }
        },
      )
      inflight.add(op)
      void op.finally(() => inflight.delete(op))
    }
    /** How late (scenario ms) the latest operation was issued: the event loop could not keep up. */
    let behind = 0
    const runWorkload = async (): Promise<void> => {
      for (let t = 0; ; ) {
        const gap = workload.nextGapMs()
        if (t + gap >= scenario.durationMs) return
        t += gap
        await clock.sleepUntil(t)
        behind = Math.max(behind, clock.now() - t)
        invoke()
      }
    }

    // Sampling: which rows changed on which peer since the last sample, and traffic.
    const samples: Samples = { t: [], up: [], changes: [], messages: [], bytes: [] }
    let last = { t: 0, messages: 0, bytes: 0 }
    const sample = (): void => {
      const changes: Array<[number, string, string]> = []
      for (const p of peers) {
        for (const [id, fp] of p.dirty) changes.push([p.index, id, fp])
        p.dirty.clear()
      }
      const now = clock.now()
      const t = traffic()
      const messages = t.gossipMessages + t.syncMessages
      const bytes = t.gossipBytes + t.syncBytes
      const seconds = Math.max(now - last.t, 1) / 1000
      samples.t.push(Math.round(now))
      samples.up.push(peers.map((p) => p.isUp()))
      samples.changes.push(changes)
      samples.messages.push((messages - last.messages) / seconds)
      samples.bytes.push((bytes - last.bytes) / seconds)
      last = { t: now, messages, bytes }
    }
    let convergedAt: number | null = null
    let healedAt: number | null = null
    sampling = true
    sampler = (async () => {
      for (let t = scenario.sampleMs; sampling; t += scenario.sampleMs) {
        await clock.sleepUntil(t, samplerSleep)
        if (!sampling) return
        sample()
        // Ticks missed while the event loop was busy are skipped, not bunched.
        while (t + scenario.sampleMs < clock.now()) t += scenario.sampleMs
        // Like model mode: the run up to the heal, then a quarter of settleMs for converging.
        const span = healAt + scenario.settleMs / 4
        const progress = healedAt === null ? clock.now() / span : (healAt + Math.min(clock.now() - healedAt, scenario.settleMs / 4)) / span
        options.onProgress?.(Math.min(0.99, progress), healedAt === null ? (clock.now() < healAt ? 'faults and workload' : 'healing') : 'converging after heal')
      }
    })()

    await runWorkload()
    if (behind > BEHIND_NOTE_MS) {
      note(`the workload ran up to ${Math.round(behind)} ms behind schedule (this process could not keep pace with ${scenario.peers} peers); a larger timeScale keeps the scenario's timing`)
    }
    await clock.sleepUntil(healAt)

    // Heal: every fault ends, crashed peers restart, every pair is connected again.
    timeline.flush()
    while (tasks.size > 0) await Promise.all([...tasks])
    network.clear()
    for (const p of peers) if (!p.isUp()) track(`restarting p${p.index} at the heal`, startPeer(p))
    while (tasks.size > 0) await Promise.all([...tasks])
    await connectMesh(network, CONNECT_DEADLINE_MS)
    await Promise.all([...inflight])
    healedAt = clock.now()

    // Convergence: every running carrier of each partition has the same digest root.
    const deadline = healedAt + scenario.settleMs
    for (;;) {
      if (converged(peers, scenario)) {
        convergedAt = clock.now()
        break
      }
      if (clock.now() >= deadline) break
      await sleep(CONVERGE_POLL_MS)
    }
    const endAt = clock.now()
    sampling = false
    samplerSleep.wake?.()
    await sampler
    sample()
    options.onProgress?.(1, 'checking')

    // Final states and the checker.
    const finals: PeerFinal[] = []
    for (const p of peers) {
      const up = p.isUp()
      const { held, rows } = up ? await p.finalState() : { held: [], rows: new Map() }
      finals.push({ peer: p.index, up, carries: (t, part) => p.carriesByConfig(t, part), roots: p.roots(), held, rows })
    }
    const violations = [...problems, ...checkRun(scenario.tables, history, finals)]
    if (convergedAt === null) violations.unshift(`not converged ${scenario.settleMs} ms after the network healed (at ${Math.round(healedAt)} ms)`)

    const sent = traffic()
    const summary: SimSummary = {
      name: scenario.name,
      mode: 'real',
      seed: scenario.seed,
      peers: scenario.peers,
      ok: violations.length === 0,
      violations,
      replay: options.replay ?? `shoal sim --seed ${scenario.seed} --peers ${scenario.peers} --mode real`,
      traceHash: null,
      ops: {
        invoked: history.length,
        acknowledged: history.filter((o) => o.status === 'ok').length,
        failed: history.filter((o) => o.status === 'failed').length,
        byKind: history.reduce<Record<string, number>>((acc, o) => ((acc[o.kind] = (acc[o.kind] ?? 0) + 1), acc), {}),
      },
      healedAt: Math.round(healedAt),
      convergedAt: convergedAt === null ? null : Math.round(convergedAt),
      timeToConvergeMs: convergedAt === null ? null : Math.max(0, Math.round(convergedAt - healedAt)),
      traffic: { messages: sent.gossipMessages + sent.syncMessages, bytes: sent.gossipBytes + sent.syncBytes, ...sent },
      faults: windows,
      series: divergenceSeries(scenario, samples, finals),
      durationMs: Math.round(endAt),
      wallMs: 0,
    }
    summary.wallMs = Math.round(performance.now() - wallStart)
    return summary
  } finally {
    sampling = false
    samplerSleep.wake?.()
    timeline.cancel()
    await Promise.allSettled([...inflight, ...tasks, sampler])
    await Promise.allSettled(peers.map((p) => p.stop()))
    if (options.keepData === true) note(`data folders kept in ${dir}`)
    else {
      await rm(dir, { recursive: true, force: true })
    }
    // A round cut short by a crash or a cut is logged as a refusal too ("…refused, stream closed: …"); those are expected here.
    const refusals = logLines.filter((l) => /refus|reject/i.test(l) && !CONNECTION_LOST.test(l))
    if (refusals.length > 0) note(`peers logged ${refusals.length} refusal(s) (of ${logLines.length} log lines), e.g.:\n  ${refusals.slice(0, 5).join('\n  ')}`)
  }
}

interface Samples {
  t: number[]
  up: boolean[][]
  changes: Array<Array<[number, string, string]>>
  messages: number[]
  bytes: number[]
}

/** Scenario time on the wall clock: scenario ms = wall ms since reset() / scale. */
class WallClock {
  private origin = performance.now()

  constructor(readonly scale: number) {}

  reset(): void {
    this.origin = performance.now()
  }

  now(): number {
    return (performance.now() - this.origin) / this.scale
  }

  /** Wall ms until scenario time `t`. */
  wallUntil(t: number): number {
    return Math.max(0, t * this.scale - (performance.now() - this.origin))
  }

  sleepUntil(t: number, wake?: { wake: (() => void) | undefined }): Promise<void> {
    return sleep(this.wallUntil(t), wake)
  }
}

/** Fault events at scenario times, run by wall-clock timers; flush() runs the rest at once, in order. */
class Timeline {
  private readonly tasks: Array<{ at: number; seq: number; fn: () => void; done: boolean; timer: ReturnType<typeof setTimeout> }> = []
  private seq = 0

  constructor(private readonly clock: WallClock) {}

  at(at: number, fn: () => void): void {
    const task = { at, seq: this.seq++, fn, done: false, timer: undefined as unknown as ReturnType<typeof setTimeout> }
    task.timer = setTimeout(() => this.run(task), this.clock.wallUntil(at))
    this.tasks.push(task)
  }

  flush(): void {
    for (;;) {
      const next = this.tasks.filter((t) => !t.done).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (next === undefined) return
      this.run(next)
    }
  }

  cancel(): void {
    for (const t of this.tasks) {
      t.done = true
      clearTimeout(t.timer)
    }
  }

  private run(task: { fn: () => void; done: boolean; timer: ReturnType<typeof setTimeout> }): void {
    if (task.done) return
    task.done = true
    clearTimeout(task.timer)
    task.fn()
  }
}

function sleep(ms: number, wake?: { wake: (() => void) | undefined }): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    if (wake !== undefined) {
      wake.wake = () => {
        clearTimeout(timer)
        resolve()
      }
    }
  })
}

/** Dials until every pair of running peers that may reach each other is connected, or the deadline (wall ms) passes. */
async function connectMesh(network: RealNetwork, deadlineMs: number): Promise<boolean> {
  const end = performance.now() + deadlineMs
  for (;;) {
    await network.connectAll()
    if (network.fullyConnected()) return true
    if (performance.now() > end) return false
    await sleep(100)
  }
}

function totals(peers: readonly RealPeer[]): TrafficTotals {
  const sum: TrafficTotals = { gossipMessages: 0, gossipBytes: 0, syncMessages: 0, syncBytes: 0 }
  for (const p of peers) {
    const t = p.traffic()
    sum.gossipMessages += t.gossipMessages
    sum.gossipBytes += t.gossipBytes
    sum.syncMessages += t.syncMessages
    sum.syncBytes += t.syncBytes
  }
  return sum
}

const ZERO_ROOT = '0'.repeat(32)

function converged(peers: readonly RealPeer[], scenario: Scenario): boolean {
  const live = peers.filter((p) => p.isUp())
  const roots = live.map((p) => p.roots())
  const parts = new Set<string>()
  for (const r of roots) for (const k of r.keys()) parts.add(k)
  for (const part of parts) {
    const cut = part.indexOf('/')
    const [table, partition] = [part.slice(0, cut), part.slice(cut + 1)]
    if (!scenario.tables.some((t) => t.name === table)) continue
    const seen = new Set<string>()
    live.forEach((p, i) => {
      if (p.carriesByConfig(table, partition)) seen.add(roots[i]!.get(part) ?? ZERO_ROOT)
    })
    if (seen.size > 1) return false
  }
  return true
}

function splitRowId(id: string): [string, string, string] {
  const a = id.indexOf('/')
  const b = id.indexOf('/', a + 1)
  return [id.slice(0, a), id.slice(a + 1, b), id.slice(b + 1)]
}

/** Rows differing from the final state, per peer per sample (replayed from the recorded changes). */
function divergenceSeries(scenario: Scenario, samples: Samples, finals: readonly PeerFinal[]): SimSummary['series'] {
  // The final state of each row: what the live carriers converged to (first live carrier).
  const final = new Map<string, string>()
  for (const f of finals) {
    if (!f.up) continue
    for (const [id, state] of f.rows) if (!final.has(id)) final.set(id, fingerprint(state.alive, state.values))
  }
  const divergence = finals.map((f) => {
    const current = new Map<string, string>()
    // Rows this peer should end with; absent ones count as differing until they arrive.
    let differing = [...final.keys()].filter((id) => {
      const [table, partition] = splitRowId(id)
      return f.carries(table, partition)
    }).length
    return samples.t.map((_, s) => {
      for (const [peer, id, fp] of samples.changes[s]!) {
        if (peer !== f.peer) continue
        const target = final.get(id) ?? ''
        const before = (current.get(id) ?? '') === target
        current.set(id, fp)
        const after = fp === target
        if (before && !after) differing++
        else if (!before && after) differing--
      }
      return samples.up[s]![f.peer] === true ? differing : null
    })
  })
  return {
    intervalMs: scenario.sampleMs,
    t: samples.t,
    peers: finals.map((f) => `p${f.peer}`),
    divergence,
    messagesPerSec: samples.messages,
    bytesPerSec: samples.bytes,
  }
}

const NOT_INJECTED = 'not injected in real-stack mode (use model mode)'

function describe(f: FaultSpec): string {
  switch (f.kind) {
    case 'skew':
      return `${describeFault(f)}: no effect in real-stack mode (clocks are not simulated)`
    case 'loss':
    case 'duplicate':
    case 'delay':
      return `${describeFault(f)}: ${NOT_INJECTED}`
    default:
      return describeFault(f)
  }
}

interface FaultContext {
  peers: readonly RealPeer[]
  network: RealNetwork
  rng: Rng
  timeline: Timeline
  track: (what: string, work: Promise<unknown>) => void
  startPeer: (p: RealPeer) => Promise<void>
}

/** Puts a fault into force; returns the function that lifts it. */
function applyFault(f: FaultSpec, ctx: FaultContext): () => void {
  const { peers, network, rng, timeline, track, startPeer } = ctx
  const n = peers.length
  switch (f.kind) {
    case 'partition':
    case 'isolate':
    case 'bridge':
    case 'ring':
      return network.addCut(cutOf(f, n, rng)!)
    case 'loss':
    case 'duplicate':
    case 'delay':
    case 'skew':
      return () => undefined
    case 'crash': {
      const peer = peers[f.peer]!
      if (!peer.isUp()) return () => undefined
      track(`crash of p${f.peer}`, peer.stop())
      return () => track(`restart of p${f.peer}`, startPeer(peer))
    }
    case 'join':
      track(`join of p${f.peer}`, startPeer(peers[f.peer]!))
      return () => undefined
    case 'swizzle': {
      const all: Array<[number, number]> = []
      for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) all.push([a, b])
      const chosen = rng.shuffle(all).slice(0, f.links)
      const cut = new Set<string>()
      const key = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`)
      let active = true
      const removeCut = network.addCut((a, b) => cut.has(key(a, b)))
      chosen.forEach(([a, b], i) =>
        timeline.at(f.at + i * f.stepMs, () => {
          if (!active) return
          cut.add(key(a, b))
          network.enforce()
        }),
      )
      const restoreAt = f.for ?? chosen.length * f.stepMs
      rng.shuffle([...chosen]).forEach(([a, b], i) =>
        timeline.at(f.at + restoreAt + i * f.stepMs, () => {
          if (!active) return
          cut.delete(key(a, b))
          void network.connectAll()
        }),
      )
      return () => {
        active = false
        removeCut()
      }
    }
  }
}
