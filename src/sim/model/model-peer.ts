import { decodeDeltaBatch, GossipCoalescer } from '../../sync/gossip.js'
import { answer, reconcile } from '../../sync/reconciler.js'
import type { SyncReplica } from '../../sync/replica.js'
import { DEFAULT_CONNECT_DELAY_MS, LEARNED_MAX_WAIT_MS, LEARNED_QUIET_MS, RoundScheduler, type RoundOutcome } from '../../sync/round-scheduler.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type SyncRequest, type SyncResponse } from '../../sync/sync-messages.js'
import type { RowEngine } from '../../table/engine.js'
import { engineFor as defaultEngineFor } from '../../table/engines.js'
import { partitionId } from '../../table/ids.js'
import type { RowOp, RowState } from '../../table/row.js'
import type { ResolvedSchema } from '../../table/schema.js'
import type { Rng } from '../core/rng.js'
import { ChangesetLog, enginesByTable, TrustedReplica } from './changesets.js'
import { MemoryReplica } from './memory-replica.js'
import type { PeerTrust } from './model-mesh.js'
import type { SimNetwork } from './network.js'
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
  /** In a mesh with roles: this peer's key and membership (it then replicates signed changesets only). */
  trust?: PeerTrust
}


interface InboundSession {
  session: number
  startedAt: number
  served: number
  cancelIdle: () => void
}

/**
 * One model-mode peer: a MemoryReplica plus the real gossip coalescer, the real anti-entropy
 * reconciler/responder and the real round policy (RoundScheduler: when, and with whom), talking
 * over the simulated network in virtual time. Gossip is epidemic, as gossipsub's mesh is: each
 * peer forwards a message it sees first to `fanout` random peers that carry its (table, partition).
 * "Connected" peers, for the round policy, are those the network lets this one reach that share
 * a carried partition with it; a heal or restart opens connections with a few of them.
 */
export class ModelPeer {
  readonly label: string
  readonly replica: MemoryReplica
  /** Clock offset (skew fault), ms. */
  skewMs = 0
  roundsOk = 0
  roundsFailed = 0
  private readonly sync: SyncReplica
  private readonly changesets: ChangesetLog | null
  private up = true
  private epoch = 0
  private seq = 0
  private nextSession = 0
  private readonly seen = new Set<string>()
  private readonly pending = new Map<number, { resolve: (r: SyncResponse) => void; reject: (e: Error) => void; type: SyncRequest['type']; cancelTimer: () => void }>()
  private readonly sessions = new Map<number, InboundSession>()
  /** When gossip last brought deltas, per partition id (the round policy waits for it to be quiet). */
  private readonly lastGossip = new Map<string, number>()
  private nextRequest = 0
  private coalescer: GossipCoalescer
  private rounds: RoundScheduler

  constructor(private readonly init: ModelPeerInit) {
    this.label = `p${init.index}`
    const engines = init.engineFor ?? defaultEngineFor
    this.replica = new MemoryReplica(
      init.tables,
      init.carries,
      { actor: init.trust?.author ?? `sim-peer-${init.index}`, nowSeconds: () => Math.floor((init.scheduler.now() + this.skewMs) / 1000) },
      engines,
    )
    this.replica.onChange = (table, partition, key) => init.onRowChange(init.index, table, partition, key)
    this.changesets = init.trust === undefined ? null : new ChangesetLog(init.trust, this.replica, enginesByTable(init.tables, engines))
    this.sync = this.changesets === null ? this.replica : new TrustedReplica(this.replica, this.changesets)
    this.coalescer = this.newCoalescer()
    this.rounds = this.newRounds()
  }

  get index(): number {
    return this.init.index
  }

  /** Changesets refused for their author's rights (or forged), each delivery counted. */
  get refusals(): number {
    return this.changesets?.refusals ?? 0
  }

  isUp(): boolean {
    return this.up
  }

  /** Whether this peer carries (table, partition) by its config (what the checker holds it to). */
  carriesByConfig(table: string, partition: string): boolean {
    const listed = this.init.carries[table]
    return listed === undefined || listed.includes(partition)
  }

  /** A local write; its delta is gossiped (in a mesh with roles, as a changeset signed at once). */
  write(table: string, partition: string, key: string, op: RowOp): { delta: Uint8Array | null; state: RowState } {
    const result = this.replica.write(table, partition, key, op)
    const delta = result.delta
    if (delta !== null) {
      if (this.changesets === null) this.coalescer.add(table, partition, key, delta)
      else {
        // Signing settles before the next event runs: the changeset is made with the write.
        const coalescer = this.coalescer
        void this.changesets.record(table, partition, key, delta).then((bytes) => coalescer.add(table, partition, key, bytes))
      }
    }
    return result
  }

  start(): void {
    this.up = true
    this.init.network.setUp(this.index, true)
    this.rounds = this.newRounds()
    this.rounds.start()
  }

  /** Crash: in-flight work (queued gossip, rounds, sessions, pending requests, the round policy's state) is lost; the replica stays. */
  crash(): void {
    this.up = false
    this.epoch++
    this.init.network.setUp(this.index, false)
    this.rounds.stop()
    this.coalescer = this.newCoalescer()
    for (const p of this.pending.values()) {
      p.cancelTimer()
      p.reject(new Error('crashed'))
    }
    this.pending.clear()
    for (const s of this.sessions.values()) s.cancelIdle()
    this.sessions.clear()
  }

  /** After a restart or a heal: connections open with a few reachable partners (both sides learn of them). */
  reconnect(): void {
    if (!this.up) return
    const now = Math.floor(this.init.scheduler.now())
    for (const partner of this.init.rng.shuffle(this.connected()).slice(0, this.init.antiEntropy.peersPerRound)) {
      this.rounds.connected(partner.label, now)
      partner.rounds.connected(this.label, now)
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
      this.init.network.send(this.index, target.index, 'gossip', message.length, () => void target.receiveGossip(id, message, this.index))
    }
  }

  async receiveGossip(id: string, message: Uint8Array, from: number): Promise<void> {
    if (!this.up || this.seen.has(id)) return
    this.seen.add(id)
    const batch = decodeDeltaBatch(message)
    if (!this.carriesByConfig(batch.table, batch.partition)) return
    const origin = this.init.peers()[Number(id.slice(0, id.indexOf(':')))]!
    const learned = !this.replica.holds(batch.table, batch.partition)
    this.lastGossip.set(partitionId(batch.table, batch.partition), Math.floor(this.init.scheduler.now()))
    let refused = false
    for (const { key, delta } of batch.deltas) {
      if (this.changesets === null) this.replica.merge(batch.table, batch.partition, key, delta, `p${from}`)
      else if ((await this.changesets.accept(delta, batch.table, batch.partition, `p${from}`)) === 'refused') refused = true
    }
    if (learned && origin !== this) this.rounds.learnedPartition(origin.label, batch.table, batch.partition)
    // A message with a refused changeset is not relayed (a gossipsub validator would reject it).
    if (!refused && this.up) this.forward(id, message, from)
  }

  // ---- anti-entropy ------------------------------------------------------------------------

  private newRounds(): RoundScheduler {
    const { scheduler, antiEntropy, rng } = this.init
    // Whole milliseconds, as Date.now() gives the running peer: the policy's waits are differences
    // of its readings, and a fractional remainder (1e-13 ms) would not move virtual time at all.
    const now = (): number => Math.floor(scheduler.now())
    return new RoundScheduler({
      clock: { now, schedule: (fn, ms) => scheduler.schedule(ms, fn) },
      random: () => rng.float(),
      intervalMs: antiEntropy.intervalMs,
      peersPerRound: antiEntropy.peersPerRound,
      connectDelayMs: DEFAULT_CONNECT_DELAY_MS,
      self: this.label,
      learnedQuietMs: LEARNED_QUIET_MS,
      learnedMaxWaitMs: LEARNED_MAX_WAIT_MS,
      candidates: () => this.connected().map((p) => p.label),
      run: (label) => void this.round(this.init.peers()[Number(label.slice(1))]!),
      gossipIdleMs: (table, partition) => {
        const at = this.lastGossip.get(partitionId(table, partition))
        return at === undefined ? Infinity : now() - at
      },
    })
  }

  /** Peers this one is connected to: reachable now, and sharing at least one carried partition. */
  private connected(): ModelPeer[] {
    return this.init.peers().filter((p) => p.index !== this.index && this.init.network.reachable(this.index, p.index) && this.overlaps(p))
  }

  private overlaps(other: ModelPeer): boolean {
    for (const table of this.init.tables) {
      const mine = this.init.carries[table.name]
      const theirs = other.init.carries[table.name]
      if (mine === undefined || theirs === undefined || mine.some((p) => theirs.includes(p))) return true
    }
    return false
  }

  /** One round as the initiator, if the round policy lets it start (none with that peer runs). */
  private async round(partner: ModelPeer): Promise<void> {
    const rounds = this.rounds
    if (!this.up || !rounds.outboundStarting(partner.label)) return
    const epoch = this.epoch
    const session = this.nextSession++
    const startedAt = Math.floor(this.init.scheduler.now())
    let outcome: RoundOutcome = 'failed'
    this.init.trace(`round ${this.index}>${partner.index}`)
    try {
      const stats = await reconcile(this.sync, (req) => this.request(partner, session, req), { from: partner.label })
      outcome = stats.errors.length === 0 ? 'ok' : 'failed'
      if (epoch === this.epoch) this.roundsOk++
      this.init.trace(`round-done ${this.index}>${partner.index} ${stats.rowsReceived}/${stats.rowsSent}`)
    } catch (error) {
      // The partner runs its own round with us (both started at once): that one covers both directions.
      if ((error as { code?: string }).code === 'BUSY') outcome = 'declined'
      else if (epoch === this.epoch) this.roundsFailed++
      this.init.trace(`round-${outcome} ${this.index}>${partner.index} ${(error as Error).message}`)
    } finally {
      rounds.outboundEnded(partner.label, startedAt, outcome)
      // The stream closes: the responder's session ends (completed if the round was not cut short).
      if (epoch === this.epoch) this.init.network.send(this.index, partner.index, 'close', 0, () => partner.sessionClosed(this.index, session, outcome !== 'failed'))
    }
  }

  private request(partner: ModelPeer, session: number, req: SyncRequest): Promise<SyncResponse> {
    const bytes = encodeRequest(req)
    const id = this.nextRequest++
    return new Promise<SyncResponse>((resolve, reject) => {
      const cancelTimer = this.init.scheduler.schedule(this.init.antiEntropy.requestTimeoutMs, () => {
        this.pending.delete(id)
        reject(new Error(`request '${req.type}' to ${partner.label} timed out`))
      })
      this.pending.set(id, { resolve, reject, type: req.type, cancelTimer })
      this.init.network.send(this.index, partner.index, 'sync', bytes.length, () => void partner.serve(id, session, bytes, this))
    })
  }

  /** Answers one request of an inbound session, as the running peer's responder does (declines included). */
  private async serve(id: number, session: number, bytes: Uint8Array, from: ModelPeer): Promise<void> {
    if (!this.up) return
    const epoch = this.epoch
    const request = decodeRequest(bytes)
    let current = this.sessions.get(from.index)
    let response: SyncResponse | undefined
    if (current?.session !== session) {
      if (request.type === 'hello' && this.rounds.shouldDecline(from.label, this.label)) {
        response = { type: 'error', code: 'BUSY', message: 'a round with you is already running from this side' }
      } else if (current !== undefined) {
        response = { type: 'error', code: 'BUSY', message: 'a round with you is already being served; try again later' }
      } else {
        current = { session, startedAt: Math.floor(this.init.scheduler.now()), served: 0, cancelIdle: () => undefined }
        this.sessions.set(from.index, current)
        this.rounds.inboundStarted(from.label)
      }
    }
    if (response === undefined && current !== undefined) {
      const live = current
      live.cancelIdle()
      // An initiator that went away (crashed, cut off) never closes: the session ends when idle.
      live.cancelIdle = this.init.scheduler.schedule(2 * this.init.antiEntropy.requestTimeoutMs, () => this.endSession(from.index, live, false))
      response = await answer(this.sync, request, from.label)
      live.served++
    }
    if (epoch !== this.epoch || response === undefined) return
    const encoded = encodeResponse(response)
    this.init.network.send(this.index, from.index, 'sync', encoded.length, () => from.receiveResponse(id, encoded))
  }

  private sessionClosed(from: number, session: number, graceful: boolean): void {
    const current = this.sessions.get(from)
    if (current !== undefined && current.session === session) this.endSession(from, current, graceful && current.served > 0)
  }

  private endSession(from: number, session: InboundSession, completed: boolean): void {
    if (this.sessions.get(from) !== session) return
    session.cancelIdle()
    this.sessions.delete(from)
    this.rounds.inboundEnded(`p${from}`, session.startedAt, completed)
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
