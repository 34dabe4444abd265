import { decodeDeltaBatch, GossipCoalescer } from '../sync/gossip.js'
import { answer, reconcile } from '../sync/reconciler.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type SyncRequest, type SyncResponse } from '../sync/sync-messages.js'
import type { RowEngine } from '../table/engine.js'
import type { ResolvedSchema } from '../table/schema.js'
import { MemoryReplica } from './memory-replica.js'
import type { SimNetwork } from './network.js'
import type { Rng } from './rng.js'
import type { VirtualScheduler } from './scheduler.js'

export interface ModelPeerInit {
  index: number
  tables: readonly ResolvedSchema[]
  carries: Readonly<Record<string, readonly string[]>>
  scheduler: VirtualScheduler
  network: SimNetwork
  rng: Rng
  gossip: { coalesceMs: number; fanout: number }
  antiEntropy: { intervalMs: number; peersPerRound: number; requestTimeoutMs: number }
  /** Other peers' handles, filled in by the runner once all exist. */
  peers: () => readonly ModelPeer[]
  trace: (line: string) => void
  /** Test hook: replace the row engines (e.g. a deliberately broken one). */
  engineFor?: (name: ResolvedSchema['engine']) => RowEngine
  /** Called when a row's state changes here (for divergence sampling). */
  onRowChange: (peer: number, table: string, partition: string, key: string) => void
}

/**
 * One model-mode peer: a MemoryReplica plus the real gossip coalescer and the real anti-entropy
 * reconciler/responder, talking over the simulated network in virtual time. Gossip is epidemic,
 * as gossipsub's mesh is: each peer forwards a message it sees first to `fanout` random peers that
 * carry its (table, partition).
 */
export class ModelPeer {
  readonly label: string
  readonly replica: MemoryReplica
  /** Clock offset (skew fault), ms. */
  skewMs = 0
  private up = true
  private epoch = 0
  private seq = 0
  private readonly seen = new Set<string>()
  private readonly busy = new Set<number>()
  private readonly pending = new Map<number, { resolve: (r: SyncResponse) => void; reject: (e: Error) => void; type: SyncRequest['type']; cancelTimer: () => void }>()
  private nextRequest = 0
  private coalescer: GossipCoalescer
  private periodic: (() => void) | null = null
  roundsOk = 0
  roundsFailed = 0

  constructor(private readonly init: ModelPeerInit) {
    this.label = `p${init.index}`
    this.replica = new MemoryReplica(
      init.tables,
      init.carries,
      { actor: `sim-peer-${init.index}`, nowSeconds: () => Math.floor((init.scheduler.now() + this.skewMs) / 1000) },
      init.engineFor,
    )
    this.replica.onChange = (table, partition, key, delta, origin) => {
      init.onRowChange(init.index, table, partition, key)
      if (origin === 'local') this.coalescer.add(table, partition, key, delta)
    }
    this.coalescer = this.newCoalescer()
  }

  get index(): number {
    return this.init.index
  }

  isUp(): boolean {
    return this.up
  }

  /** Whether this peer carries (table, partition) by its config (what the checker holds it to). */
  carriesByConfig(table: string, partition: string): boolean {
    const listed = this.init.carries[table]
    return listed === undefined || listed.includes(partition)
  }

  start(): void {
    this.up = true
    this.init.network.setUp(this.index, true)
    this.schedulePeriodic()
  }

  /** Crash: in-flight work (queued gossip, rounds, pending requests) is lost; the replica stays. */
  crash(): void {
    this.up = false
    this.epoch++
    this.init.network.setUp(this.index, false)
    this.periodic?.()
    this.periodic = null
    this.coalescer = this.newCoalescer()
    for (const p of this.pending.values()) {
      p.cancelTimer()
      p.reject(new Error('crashed'))
    }
    this.pending.clear()
    this.busy.clear()
  }

  /** After a restart or a heal: reconcile soon with a few reachable partners, as a new connection would. */
  reconnect(): void {
    if (!this.up) return
    for (const partner of this.partners(this.init.antiEntropy.peersPerRound)) {
      this.init.scheduler.schedule(this.init.rng.float() * 100, () => void this.round(partner))
    }
  }

  // ---- gossip ----------------------------------------------------------------------------

  private newCoalescer(): GossipCoalescer {
    return new GossipCoalescer({
      coalesceMs: this.init.gossip.coalesceMs,
      schedule: (fn, ms) => this.init.scheduler.schedule(ms, fn),
      publish: (_topic, message) => {
        const id = `${this.index}:${this.seq++}`
        this.seen.add(id)
        this.forward(id, message, -1)
      },
    })
  }

  private forward(id: string, message: Uint8Array, from: number): void {
    const batch = decodeDeltaBatch(message)
    const targets = this.init.peers().filter((p) => p.index !== this.index && p.index !== from && p.carriesByConfig(batch.table, batch.partition))
    for (const target of this.init.rng.shuffle(targets).slice(0, this.init.gossip.fanout)) {
      this.init.network.send(this.index, target.index, 'gossip', message.length, () => target.receiveGossip(id, message, this.index))
    }
  }

  receiveGossip(id: string, message: Uint8Array, from: number): void {
    if (!this.up || this.seen.has(id)) return
    this.seen.add(id)
    const batch = decodeDeltaBatch(message)
    if (!this.carriesByConfig(batch.table, batch.partition)) return
    for (const { key, delta } of batch.deltas) this.replica.merge(batch.table, batch.partition, key, delta, `p${from}`)
    this.forward(id, message, from)
  }

  // ---- anti-entropy ------------------------------------------------------------------------

  private schedulePeriodic(): void {
    const { intervalMs } = this.init.antiEntropy
    this.periodic = this.init.scheduler.schedule(intervalMs * (0.5 + this.init.rng.float()), () => {
      this.periodic = null
      if (!this.up) return
      for (const partner of this.partners(this.init.antiEntropy.peersPerRound)) void this.round(partner)
      this.schedulePeriodic()
    })
  }

  /** Peers sharing at least one carried partition with this one, chosen at random. */
  private partners(count: number): ModelPeer[] {
    const others = this.init.peers().filter((p) => p.index !== this.index && this.overlaps(p))
    return this.init.rng.shuffle(others).slice(0, count)
  }

  private overlaps(other: ModelPeer): boolean {
    for (const table of this.init.tables) {
      const mine = this.init.carries[table.name]
      const theirs = other.init.carries[table.name]
      if (mine === undefined || theirs === undefined || mine.some((p) => theirs.includes(p))) return true
    }
    return false
  }

  async round(partner: ModelPeer): Promise<void> {
    if (!this.up || this.busy.has(partner.index)) return
    const epoch = this.epoch
    this.busy.add(partner.index)
    this.init.trace(`round ${this.index}>${partner.index}`)
    try {
      const stats = await reconcile(this.replica, (req) => this.request(partner, req), { from: partner.label })
      if (epoch === this.epoch) this.roundsOk++
      this.init.trace(`round-done ${this.index}>${partner.index} ${stats.rowsReceived}/${stats.rowsSent}`)
    } catch (error) {
      if (epoch === this.epoch) this.roundsFailed++
      this.init.trace(`round-failed ${this.index}>${partner.index} ${(error as Error).message}`)
    } finally {
      if (epoch === this.epoch) this.busy.delete(partner.index)
    }
  }

  private request(partner: ModelPeer, req: SyncRequest): Promise<SyncResponse> {
    const bytes = encodeRequest(req)
    const id = this.nextRequest++
    return new Promise<SyncResponse>((resolve, reject) => {
      const cancelTimer = this.init.scheduler.schedule(this.init.antiEntropy.requestTimeoutMs, () => {
        this.pending.delete(id)
        reject(new Error(`request '${req.type}' to ${partner.label} timed out`))
      })
      this.pending.set(id, { resolve, reject, type: req.type, cancelTimer })
      this.init.network.send(this.index, partner.index, 'sync', bytes.length, () => void partner.serve(id, bytes, this))
    })
  }

  private async serve(id: number, bytes: Uint8Array, from: ModelPeer): Promise<void> {
    if (!this.up) return
    const epoch = this.epoch
    const response = encodeResponse(await answer(this.replica, decodeRequest(bytes), from.label))
    if (epoch !== this.epoch) return
    this.init.network.send(this.index, from.index, 'sync', response.length, () => from.receiveResponse(id, response))
  }

  private receiveResponse(id: number, bytes: Uint8Array): void {
    const p = this.pending.get(id)
    if (p === undefined) return // timed out, or sent to a previous incarnation
    this.pending.delete(id)
    p.cancelTimer()
    try {
      p.resolve(decodeResponse(bytes, p.type))
    } catch (error) {
      p.reject(error as Error)
    }
  }
}
