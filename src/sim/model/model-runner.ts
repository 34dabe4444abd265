import { sha256 } from '@noble/hashes/sha2.js'
import { ShoalError } from '../../errors.js'
import type { RowEngine } from '../../table/engine.js'
import { toHex } from '../../table/hash.js'
import type { ResolvedSchema } from '../../table/schema.js'
import { rowId, type PeerFinal } from '../core/checker.js'
import { splitRowId, stateFingerprint, type RowChange } from '../core/divergence.js'
import { cutOf, linkKey, swizzleSteps } from '../core/faults.js'
import { rolesOf } from '../core/roles.js'
import { Rng } from '../core/rng.js'
import { runSkeleton, type RunMode, type SkeletonOptions } from '../core/run-skeleton.js'
import type { FaultSpec, Scenario } from '../core/scenario.js'
import type { SimSummary } from '../core/summary.js'
import { ModelMesh } from './model-mesh.js'
import { ModelPeer } from './model-peer.js'
import { SimNetwork } from './network.js'
import { VirtualScheduler } from './scheduler.js'

export interface RunOptions {
  /** Called as simulation time advances: fraction done (0…1) and a short label. */
  onProgress?: (fraction: number, label: string) => void
  /** Test hook: substitute row engines (e.g. a deliberately broken merge). */
  engineFor?: (name: ResolvedSchema['engine']) => RowEngine
  /** Test hook: with false, peers accept deltas whatever their author's rights (the checker must then fail a roles scenario). */
  enforceRoles?: boolean
  /** The command line that replays this run (put into the summary). */
  replay?: string
  /** Test hook: the history and the final states the checker judged. */
  inspect?: SkeletonOptions['inspect']
}

const encoder = new TextEncoder()
/** Resolution of the time-to-converge measurement after the network heals (simulation ms). */
const CONVERGENCE_STEP_MS = 10

/**
 * Model mode: N peers of MemoryReplica + the real gossip coalescer, anti-entropy reconciler and
 * round scheduler over a simulated network in virtual time. Deterministic: the same scenario and
 * seed give the same event trace, whose hash is in the summary.
 */
export async function runModel(scenario: Scenario, options: RunOptions = {}): Promise<SimSummary> {
  const root = new Rng(scenario.seed)
  const scheduler = new VirtualScheduler()
  const traceHash = sha256.create()
  const trace = (line: string): void => {
    traceHash.update(encoder.encode(`${scheduler.now().toFixed(3)} ${line}\n`))
  }
  const network = new SimNetwork(scheduler, root.fork('network'), scenario.network, trace)
  const roles = rolesOf(scenario, options.enforceRoles ?? true)
  const mesh = roles === null ? null : await ModelMesh.create(scenario, roles, root.fork('keys'), () => scheduler.now())
  const trust = mesh === null ? null : await Promise.all(Array.from({ length: scenario.peers }, (_, i) => mesh.trustFor(i)))
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
        ...(trust === null ? {} : { trust: trust[i]! }),
        ...(options.engineFor === undefined ? {} : { engineFor: options.engineFor }),
      }),
    )
  }

  // Peers that join late are down until then.
  const joins = new Set(scenario.faults.filter((f) => f.kind === 'join').map((f) => f.peer))
  for (const p of peers) {
    if (joins.has(p.index)) network.setUp(p.index, false)
    else p.start()
  }

  const mode: RunMode<ModelPeer> = {
    mode: 'model',
    peers,
    now: () => scheduler.now(),
    at: (at, fn) => void scheduler.schedule(at - scheduler.now(), fn),
    advanceTo: (t) => scheduler.runUntil(t),
    convergeStepMs: CONVERGENCE_STEP_MS,
    applyFault: (fault, rng) => applyFault(fault, peers, network, rng, scheduler),
    faultLifted: () => {
      for (const p of peers) p.reconnect()
    },
    alive: (peer, table, partition, key) => peer.replica.read(table, partition, key)?.alive === true,
    write: (peer, planned, entry) => {
      try {
        const { state } = peer.write(planned.table.name, planned.partition, planned.key, planned.op(peer.replica.read(planned.table.name, planned.partition, planned.key)))
        entry.status = 'ok'
        entry.life = state.life
      } catch (error) {
        if (!(error instanceof ShoalError)) throw error
        entry.status = 'failed'
        entry.error = error.code
      }
    },
    changes: () => {
      const changes: RowChange[] = []
      for (const p of peers) {
        for (const id of dirty.get(p.index)!) {
          const [table, partition, key] = splitRowId(id)
          changes.push([p.index, id, stateFingerprint(p.replica.read(table, partition, key))])
        }
        dirty.get(p.index)!.clear()
      }
      return changes
    },
    traffic: () => network.traffic,
    roots: (p) => new Map(p.replica.roots().map((r) => [`${r.table}/${r.partition}`, toHex(r.root)])),
    heal: async () => undefined,
    finals: async () => peers.map((p) => modelFinal(p)),
    problems: () => [],
    traceHash: () => toHex(traceHash.digest()),
    trace,
    refusals: () => peers.reduce((sum, p) => sum + p.refusals, 0),
    replay: options.replay ?? `shoal sim --seed ${scenario.seed}`,
  }
  try {
    return await runSkeleton(scenario, mode, {
      roles,
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      ...(options.inspect === undefined ? {} : { inspect: options.inspect }),
    })
  } finally {
    for (const p of peers) p.replica.dispose()
  }
}

function modelFinal(p: ModelPeer): PeerFinal {
  const rows: PeerFinal['rows'] = new Map()
  const roots = new Map<string, string>()
  for (const h of p.replica.heldPartitions()) {
    for (const [key] of p.replica.rows(h.table, h.partition)) rows.set(rowId(h.table, h.partition, key), p.replica.read(h.table, h.partition, key)!)
  }
  for (const r of p.replica.roots()) roots.set(`${r.table}/${r.partition}`, toHex(r.root))
  return { peer: p.index, up: p.isUp(), carries: (t, part) => p.carriesByConfig(t, part), roots, held: p.replica.heldPartitions(), rows }
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
      const cut = new Set<string>()
      const removeCut = network.addCut((a, b) => cut.has(linkKey(a, b)))
      const cancels = swizzleSteps(f, n, rng).map(({ afterMs, link: [a, b], cut: cutting }) =>
        scheduler.schedule(afterMs, () => (cutting ? cut.add(linkKey(a, b)) : cut.delete(linkKey(a, b)))),
      )
      return () => {
        for (const c of cancels) c()
        removeCut()
      }
    }
  }
}
