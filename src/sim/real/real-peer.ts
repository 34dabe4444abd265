import { mkdir } from 'node:fs/promises'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { parseConfig, type PeerConfig } from '../../config.js'
import { loadOrCreatePeerKey } from '../../net/identity.js'
import { Peer } from '../../peer/peer.js'
import type { ReplicaSource } from '../../store/replica-source.js'
import type { ChangeEvent } from '../../store/store.js'
import type { TableWrite } from '../../shoal.js'
import { callbackLogger } from '../../log.js'
import { LEAF_COUNT } from '../../table/digest-tree.js'
import { engineFor } from '../../table/engines.js'
import { toHex } from '../../table/hash.js'
import { RowDocument, type RowState } from '../../table/row.js'
import type { ResolvedSchema } from '../../table/schema.js'
import { rowId } from '../core/checker.js'
import { fingerprint } from '../core/divergence.js'
import type { Scenario } from '../core/scenario.js'
import type { PlannedOp } from '../core/workload.js'

/*
 * One peer of a real-stack simulation: a real Peer (LevelDB store in its own folder, libp2p over
 * the in-process memory transport, gossip replicator, anti-entropy) that the runner can crash,
 * restart and cut off, plus what the runner observes of it: row changes (for the divergence
 * series and the workload planner), traffic counters, and the exact row state after each of the
 * workload's writes.
 */

export interface RealPeerInit {
  index: number
  scenario: Scenario
  /** The peer's data folder (created empty; its libp2p key is made at once, so its id is known before it starts). */
  dir: string
  /** '/memory/<unique name>' */
  listen: string
  timeScale: number
  /** May this peer be connected to peer `other` now (the runner's cuts)? */
  allowed: (self: number, other: number) => boolean
  /** Peer index of a libp2p peer id (undefined: not a peer of this run). */
  indexOf: (peerId: string) => number | undefined
  log: (index: number, message: string) => void
}

export interface TrafficTotals {
  gossipMessages: number
  gossipBytes: number
  syncMessages: number
  syncBytes: number
}

export type PeerState = 'idle' | 'starting' | 'up' | 'stopping' | 'down'

const PAGE_BYTES = 1 << 20
/** Peer discovery announcements: rarer than the default 10 s, as the runner connects the peers itself. */
const DISCOVERY_INTERVAL_MS = 60_000

export class RealPeer {
  readonly index: number
  readonly dir: string
  readonly listen: string
  /** 'idle': never started (a late joiner); 'down': crashed. */
  state: PeerState = 'idle'
  /** Bumped whenever the peer stops, so operations in flight across a crash are recognised. */
  generation = 0
  peerId = ''
  peer: Peer | null = null
  /** row id → whether this peer holds it alive, from change events (the planner needs a synchronous view). */
  readonly alive = new Map<string, boolean>()
  /** row id → fingerprint of its latest change since the last sample. */
  readonly dirty = new Map<string, string>()
  private readonly retired: TrafficTotals = { gossipMessages: 0, gossipBytes: 0, syncMessages: 0, syncBytes: 0 }
  private lifecycle: Promise<void> = Promise.resolve()
  private unsubscribe: (() => void) | undefined
  private readonly tables: Map<string, ResolvedSchema>

  constructor(private readonly init: RealPeerInit) {
    this.index = init.index
    this.dir = init.dir
    this.listen = init.listen
    this.tables = new Map(init.scenario.tables.map((t) => [t.name, t]))
  }

  /** Makes the data folder and the peer's key, so its peer id is known before it starts. */
  async prepare(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    this.peerId = peerIdFromPrivateKey(await loadOrCreatePeerKey(this.dir)).toString()
  }

  get address(): string {
    return `${this.listen}/p2p/${this.peerId}`
  }

  isUp(): boolean {
    return this.state === 'up'
  }

  carriesByConfig(table: string, partition: string): boolean {
    const listed = this.init.scenario.carries[this.index]?.[table]
    return listed === undefined || listed.includes(partition)
  }

  /** Starts the peer on its folder (first start, restart after a crash, or a late join). Serialised with stop(). */
  start(bootstrap: string[]): Promise<void> {
    return this.serial(async () => {
      if (this.state === 'up' || this.state === 'starting') return
      this.state = 'starting'
      const { scenario, timeScale } = this.init
      const config: PeerConfig = {
        // Defaults for every field the simulator does not drive.
        ...parseConfig({ open: true }, 'simulator'),
        name: `p${this.index}`,
        data: this.dir,
        tables: scenario.tables,
        listen: [this.listen],
        bootstrap,
        mdns: false,
        carries: scenario.carries[this.index] ?? {},
        http: null,
        httpHosts: [],
        httpOrigins: [],
        metricsPublic: false,
        relay: false,
      }
      let peer: Peer
      try {
        peer = await Peer.start(config, {
          logger: callbackLogger((_level, message) => this.init.log(this.index, message)),
          net: {
            transports: 'memory',
            gater: (remote) => {
              const other = this.init.indexOf(remote)
              return other === undefined || this.init.allowed(this.index, other)
            },
            redial: { minDelayMs: 250, maxDelayMs: 2_000 },
            // The runner dials every pair itself; announcements are signed gossip every peer verifies (each copy).
            discoveryIntervalMs: DISCOVERY_INTERVAL_MS,
          },
          sync: {
            intervalMs: scenario.antiEntropy.intervalMs * timeScale,
            peersPerRound: scenario.antiEntropy.peersPerRound,
            requestTimeoutMs: scenario.antiEntropy.requestTimeoutMs * timeScale,
            connectDelayMs: 200,
          },
          gossip: { coalesceMs: scenario.gossip.coalesceMs * timeScale },
        })
      } catch (error) {
        this.state = 'down'
        throw error
      }
      this.peer = peer
      const seen = this.instrument(peer)
      await this.resync(seen)
      this.state = 'up'
    })
  }

  /** Stops the peer (a crash: writes not yet committed fail, its store is kept). Serialised with start(). */
  stop(): Promise<void> {
    // Down at once: the workload picks no new writer from a stopping peer.
    if (this.state === 'up') this.state = 'stopping'
    this.generation++
    return this.serial(async () => {
      const peer = this.peer
      if (peer === null) return
      this.state = 'stopping'
      this.unsubscribe?.()
      this.unsubscribe = undefined
      this.peer = null
      try {
        await peer.stop()
      } finally {
        this.retire(peer)
        this.state = 'down'
      }
    })
  }

  /** Connected (an open connection) to this libp2p peer? */
  connectedTo(peerId: string): boolean {
    return this.peer?.node.libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId && c.status === 'open') ?? false
  }

  /** Closes every connection to the peer at once (a network cut: no goodbye). */
  cutFrom(peerId: string): void {
    for (const c of this.peer?.node.libp2p.getConnections() ?? []) {
      if (c.remotePeer.toString() === peerId) c.abort(new Error('simulated network cut'))
    }
  }

  traffic(): TrafficTotals {
    const t = { ...this.retired }
    if (this.peer !== null) add(t, this.current(this.peer))
    return t
  }

  /**
   * Runs a planned operation through the Table API and returns the row's state right after it, as
   * the write's own result reports it (its life is what the checker needs; reading the row back
   * could see a remote change committed in between). Throws what the Table API throws.
   *
   * Text edits insert at position 0: a position computed from a read before the write could fall
   * inside a token a peer inserted meanwhile; the start of the text is always between tokens.
   */
  async write(planned: PlannedOp): Promise<RowState> {
    const peer = this.peer
    if (peer === null) throw new Error(`p${this.index} is not running`)
    const table = peer.db.table(planned.table.name)
    const options = planned.table.partitionBy === null ? undefined : { partition: planned.partition }
    const op = planned.op(null)
    let write: TableWrite
    switch (op.op) {
      case 'put':
      case 'update':
        write = { op: op.op, key: planned.key, values: { ...op.values } }
        break
      case 'increment':
        write = { op: 'increment', key: planned.key, column: op.column, by: op.by }
        break
      case 'editText':
        write = { op: 'editText', key: planned.key, column: op.column, edit: { index: op.index, delete: op.delete, insert: op.insert } }
        break
      case 'delete':
        write = { op: 'delete', key: planned.key }
        break
    }
    const result = await table.write(write, options)
    return { alive: result.alive, life: result.life, values: result.row ?? {} }
  }

  /** Digest roots of the scenario's tables: `table/partition` → hex. */
  roots(): Map<string, string> {
    const out = new Map<string, string>()
    const store = this.peer?.db.replication()
    if (store === undefined) return out
    for (const table of this.tables.keys()) for (const p of store.partitions(table)) out.set(`${table}/${p.partition}`, toHex(p.digest))
    return out
  }

  /** Every row this peer holds of the scenario's tables, deleted ones with their real life. */
  async finalState(): Promise<{ held: Array<{ table: string; partition: string }>; rows: Map<string, RowState> }> {
    const held: Array<{ table: string; partition: string }> = []
    const rows = new Map<string, RowState>()
    const store = this.peer?.db.replication()
    if (store === undefined) return { held, rows }
    for (const schema of this.tables.values()) {
      for (const { partition } of store.partitions(schema.name)) {
        held.push({ table: schema.name, partition })
        let after: { leaf: number; key: string } | null = null
        do {
          const page = await store.rowRange(schema.name, partition, 0, LEAF_COUNT, after, PAGE_BYTES)
          for (const r of page.rows) rows.set(rowId(schema.name, partition, r.key), decodeState(store, schema, r.key, r.doc))
          after = page.next
        } while (after !== null)
      }
    }
    return { held, rows }
  }

  /**
   * A started peer replicates before `instrument` can follow it (Peer.start returns a running
   * peer), so what is on disk then is taken as changed, except rows an event has reported since.
   */
  private async resync(seen: ReadonlySet<string>): Promise<void> {
    const { rows } = await this.finalState()
    for (const [id, state] of rows) {
      if (seen.has(id)) continue
      this.alive.set(id, state.alive)
      this.dirty.set(id, fingerprint(state.alive, state.values))
    }
  }

  /** Follows the peer's changes; returns the ids of the rows reported since. */
  private instrument(peer: Peer): Set<string> {
    const seen = new Set<string>()
    this.unsubscribe = peer.db.subscribe((event: ChangeEvent) => {
      if (!this.tables.has(event.table)) return
      const id = rowId(event.table, event.partition, event.key)
      seen.add(id)
      this.alive.set(id, event.alive)
      this.dirty.set(id, fingerprint(event.alive, event.row))
    })
    // A connection that was being set up when a cut began may open after the runner hung up: close it too.
    peer.node.libp2p.addEventListener('connection:open', (event: CustomEvent<Connection>) => {
      const other = this.init.indexOf(event.detail.remotePeer.toString())
      if (other !== undefined && !this.init.allowed(this.index, other)) event.detail.abort(new Error('simulated network cut'))
    })
    return seen
  }

  private current(peer: Peer): TrafficTotals {
    return {
      gossipMessages: peer.gossip.counters.messagesOut,
      gossipBytes: peer.gossip.counters.bytesOut,
      syncMessages: peer.sync.counters.framesOut,
      syncBytes: peer.sync.counters.bytesOut,
    }
  }

  private retire(peer: Peer): void {
    add(this.retired, this.current(peer))
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.then(step)
    this.lifecycle = next.catch(() => undefined)
    return next
  }
}

function add(into: TrafficTotals, t: TrafficTotals): void {
  into.gossipMessages += t.gossipMessages
  into.gossipBytes += t.gossipBytes
  into.syncMessages += t.syncMessages
  into.syncBytes += t.syncBytes
}

function decodeState(source: ReplicaSource, schema: ResolvedSchema, key: string, bytes: Uint8Array): RowState {
  const doc = RowDocument.decode(engineFor(schema.engine), bytes, { actor: source.actor }, schema.name, key)
  try {
    return doc.state(schema)
  } finally {
    doc.dispose()
  }
}


