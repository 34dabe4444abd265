import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ShoalError } from '../../errors.js'
import { rowId, type PeerFinal } from '../core/checker.js'
import type { RowChange } from '../core/divergence.js'
import { cutOf, describeFault, linkKey, swizzleSteps } from '../core/faults.js'
import type { Rng } from '../core/rng.js'
import { runSkeleton, type RunMode } from '../core/run-skeleton.js'
import { ScenarioError, type FaultSpec, type Scenario } from '../core/scenario.js'
import type { SimSummary } from '../core/summary.js'
import { RealNetwork } from './real-network.js'
import { RealPeer, type TrafficTotals } from './real-peer.js'
import { sleep, Timeline, WallClock } from './wall-clock.js'

/*
 * Real-stack mode: N real Shoal peers (Peer: LevelDB store in a temp folder, libp2p with Noise,
 * yamux and gossipsub, the gossip replicator and anti-entropy) in this process, connected over
 * the in-memory libp2p transport, under the scenario's workload and faults, in wall-clock time.
 * The run itself (fault schedule, workload, sampling, heal, convergence, the checker) is the one
 * model mode runs too, core/run-skeleton.ts; this file supplies what the real stack does its own way.
 * A scenario with roles (a `mesh` section) is refused: roles are modelled in model mode only, until
 * the running peer's trust wiring lands.
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

/** Longest wait for the mesh to connect at the start and after healing (wall ms). */
const CONNECT_DEADLINE_MS = 30_000
/** Log lines about a connection that went away (a crash or a cut), not about a refused message. */
const CONNECTION_LOST = /stream (that )?is closed|stream closed while|stream reset|aborted|simulated network cut|connection (is )?clos/i
/** How often convergence is polled after the heal (wall ms). */
const CONVERGE_POLL_MS = 50

export async function runReal(scenario: Scenario, options: RealRunOptions = {}): Promise<SimSummary> {
  const scale = options.timeScale ?? 1
  if (!(scale > 0) || !Number.isFinite(scale)) throw new ScenarioError(`timeScale must be a positive number (got ${scale})`)
  if (scenario.mesh !== null) {
    throw new ScenarioError(`scenario '${scenario.name}' has a 'mesh' section: roles are modelled only in model mode for now (run it with --mode model, or remove 'mesh')`)
  }
  const clock = new WallClock(scale)
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
  const inflight = new Set<Promise<void>>()
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
    clock.reset()

    const mode: RunMode<RealPeer> = {
      mode: 'real',
      peers,
      now: () => clock.now(),
      at: (at, fn) => timeline.at(at, fn),
      advanceTo: (t) => clock.sleepUntil(t),
      convergeStepMs: CONVERGE_POLL_MS / scale,
      applyFault: (fault, rng) => applyFault(fault, { peers, network, rng, timeline, track, startPeer }),
      describeFault: describe,
      alive: (writer, table, partition, key) => writer.alive.get(rowId(table, partition, key)) === true,
      write: (writer, planned, entry) => {
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
              problems.push(`operation #${entry.id} (${entry.kind} ${entry.table}/${entry.partition}/${entry.key} at p${writer.index}) threw ${(error as Error).message}`)
            }
          },
        )
        inflight.add(op)
        void op.finally(() => inflight.delete(op))
      },
      changes: () => {
        const changes: RowChange[] = []
        for (const p of peers) {
          for (const [id, fp] of p.dirty) changes.push([p.index, id, fp])
          p.dirty.clear()
        }
        return changes
      },
      traffic: () => {
        const t = totals(peers)
        return { gossipMessages: t.gossipMessages - baseline.gossipMessages, gossipBytes: t.gossipBytes - baseline.gossipBytes, syncMessages: t.syncMessages - baseline.syncMessages, syncBytes: t.syncBytes - baseline.syncBytes }
      },
      roots: (p) => p.roots(),
      // Heal: every fault ends, crashed peers restart, every pair is connected again, writes in flight end.
      heal: async () => {
        timeline.flush()
        while (tasks.size > 0) await Promise.all([...tasks])
        network.clear()
        for (const p of peers) if (!p.isUp()) track(`restarting p${p.index} at the heal`, startPeer(p))
        while (tasks.size > 0) await Promise.all([...tasks])
        await connectMesh(network, CONNECT_DEADLINE_MS)
        await Promise.all([...inflight])
      },
      finals: async () => {
        const finals: PeerFinal[] = []
        for (const p of peers) {
          const up = p.isUp()
          const { held, rows } = up ? await p.finalState() : { held: [], rows: new Map() }
          finals.push({ peer: p.index, up, carries: (t, part) => p.carriesByConfig(t, part), roots: p.roots(), held, rows })
        }
        return finals
      },
      problems: () => problems,
      traceHash: () => null,
      note,
      replay: options.replay ?? `shoal sim --seed ${scenario.seed} --peers ${scenario.peers} --mode real`,
    }
    return await runSkeleton(scenario, mode, options.onProgress === undefined ? {} : { onProgress: options.onProgress })
  } finally {
    timeline.cancel()
    await Promise.allSettled([...inflight, ...tasks])
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
  switch (f.kind) {
    case 'partition':
    case 'isolate':
    case 'bridge':
    case 'ring':
      return network.addCut(cutOf(f, peers.length, rng)!)
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
      const cut = new Set<string>()
      let active = true
      const removeCut = network.addCut((a, b) => cut.has(linkKey(a, b)))
      for (const { afterMs, link: [a, b], cut: cutting } of swizzleSteps(f, peers.length, rng)) {
        timeline.at(f.at + afterMs, () => {
          if (!active) return
          if (cutting) {
            cut.add(linkKey(a, b))
            network.enforce()
          } else {
            cut.delete(linkKey(a, b))
            void network.connectAll()
          }
        })
      }
      return () => {
        active = false
        removeCut()
      }
    }
  }
}
