import type { Connection, IdentifyResult, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { ShoalNode } from '../net/node.js'
import { ProtocolError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import type { ReplicaSource } from '../store/replica-source.js'
import { ID_SEP, parsePartitionId, partitionId } from '../table/ids.js'
import type { Carries } from '../sync/carries.js'
import { answer, reconcile, type Ask, type LoadProgressEvent, type RoundStats } from '../sync/reconciler.js'
import { StoreReplica } from '../sync/store-replica.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, MAX_FRAME_BYTES, SYNC_PROTOCOL } from '../sync/sync-messages.js'
import type { LoadProgress, SyncPeerStatus, SyncStatus } from '../status.js'
import { reasonOf, Refusals } from './refusals.js'

export interface SyncServiceInit {
  /** What this peer carries (tables not listed: all). */
  carries?: Carries
  logger?: Logger
  /** Where refusals are counted and logged (shared with gossip in a running peer). */
  refusals?: Refusals
  /** Mean time between periodic rounds (default 30 s; each wait is jittered to 50–150 %). 0 turns periodic rounds off. */
  intervalMs?: number
  /** Peers reconciled with per periodic round (default 3, chosen at random). */
  peersPerRound?: number
  /** A round starts this long (jittered 0–100 %) after a peer connects (default 500 ms), so both sides rarely start at once. */
  connectDelayMs?: number
  /** A request unanswered for this long ends the round (default 60 s). */
  requestTimeoutMs?: number
  /** Range page and push batch size (default 256 KiB). */
  pageBytes?: number
  /**
   * Milliseconds since gossip last brought deltas for a partition (Infinity if never). A round
   * asked for by a partition announcement waits until the announcement and gossip on it have been
   * quiet for LEARNED_QUIET_MS, so it fetches what gossip missed instead of racing gossip for the
   * same rows.
   */
  gossipIdleMs?: (table: string, partition: string) => number
}

export interface SyncCounters {
  rounds: number
  rowsIn: number
  rowsOut: number
  bytesIn: number
  bytesOut: number
  /** Frames (requests and answers) received and sent. */
  framesIn: number
  framesOut: number
  /** Rows changed here by anti-entropy. */
  rowsRepaired: number
}

const DEFAULT_INTERVAL_MS = 30_000
const DEFAULT_PEERS_PER_ROUND = 3
const DEFAULT_CONNECT_DELAY_MS = 500
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
/** See SyncServiceInit.gossipIdleMs. */
export const LEARNED_QUIET_MS = 1_000
/** A round asked for by an announcement waits for quiet gossip at most this long. */
export const LEARNED_MAX_WAIT_MS = 10_000
/** A responder drops a stream left idle this long between requests. */
const RESPONDER_IDLE_MS = 120_000

/**
 * The repair path of replication over libp2p: serves `/shoal/sync/1.0.0` and runs anti-entropy
 * rounds (see sync/reconciler.ts) with a peer when it connects, when it announces a partition this
 * peer carries, and periodically with a few random peers. At most one round per peer at a time.
 */
export class SyncService {
  readonly counters: SyncCounters = { rounds: 0, rowsIn: 0, rowsOut: 0, bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, rowsRepaired: 0 }
  readonly refusals: Refusals
  /** Called as rows of a partition arrive in a round (initial loads, big repairs). */
  onProgress: ((progress: LoadProgress & { done: boolean }) => void) | undefined
  /** Called when a peer's hello shows a partition this peer carries but did not hold. */
  onPartitionLearned: ((table: string, partition: string) => void) | undefined
  private readonly replica: StoreReplica
  private readonly logger: Logger
  private readonly peers = new Map<string, SyncPeerStatus>()
  /** Rounds running with each peer, either side (a peer may be initiator and responder at once). */
  private readonly busy = new Map<string, number>()
  /** Peers this side is running a round with as the initiator. */
  private readonly initiating = new Set<string>()
  /** Peers to reconcile with again as soon as the round running with them ends. */
  private readonly again = new Set<string>()
  /**
   * When the last complete round with each peer started (initiated here without errors, or
   * served here until the initiator closed the stream).
   */
  private readonly lastGoodRound = new Map<string, number>()
  /** Peers that connected while a round with them was running: connection open time, decided when it ends. */
  private readonly connectedDuringRound = new Map<string, number>()
  /** Peers with an announcement-triggered round waiting for quiet gossip: the partitions it waits on, and since when. */
  private readonly learned = new Map<string, { partitions: Set<string>; since: number }>()
  private readonly loading = new Map<string, LoadProgress>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private readonly abort = new AbortController()
  private readonly running = new Set<Promise<unknown>>()
  private periodic: ReturnType<typeof setTimeout> | undefined
  private started = false

  constructor(
    private readonly source: ReplicaSource,
    private readonly node: ShoalNode,
    private readonly init: SyncServiceInit = {},
  ) {
    this.logger = init.logger ?? silentLogger
    this.refusals = init.refusals ?? new Refusals(this.logger)
    this.replica = new StoreReplica(source, init.carries ?? {}, (reason, message) => this.refusals.refuse(reason, message))
  }

  async start(): Promise<void> {
    this.started = true
    await this.node.libp2p.handle(SYNC_PROTOCOL, (stream, connection) => this.track(this.respond(stream, connection)), { maxInboundStreams: 4 })
    this.node.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.schedulePeriodic()
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.node.libp2p.removeEventListener('peer:identify', this.onIdentify)
    clearTimeout(this.periodic)
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.learned.clear()
    this.connectedDuringRound.clear()
    this.abort.abort()
    await this.node.libp2p.unhandle(SYNC_PROTOCOL).catch(() => undefined)
    await Promise.allSettled([...this.running])
  }

  status(): SyncStatus {
    return {
      rounds: this.counters.rounds,
      rowsRepaired: this.counters.rowsRepaired,
      peers: [...this.peers.values()].map((p) => ({ ...p, state: this.busy.has(p.peer) ? 'syncing' : 'idle' })),
      loading: [...this.loading.values()].map((l) => ({ ...l })),
    }
  }

  /**
   * A peer said (by gossip) that it holds a partition this peer carries: reconcile with it once
   * the gossip that follows the announcement has settled (the peer's first messages on it come
   * once this peer has subscribed). One waiting round per peer covers every partition it
   * announces meanwhile.
   */
  partitionLearned(table: string, partition: string, from: string): void {
    if (!this.started) return
    const waiting = this.learned.get(from)
    if (waiting !== undefined) {
      waiting.partitions.add(partitionId(table, partition))
      waiting.since = Date.now()
      return
    }
    this.learned.set(from, { partitions: new Set([partitionId(table, partition)]), since: Date.now() })
    const deadline = Date.now() + LEARNED_MAX_WAIT_MS
    const check = (): void => {
      const idle = this.learnedIdleMs(from)
      if (idle >= LEARNED_QUIET_MS || Date.now() >= deadline) {
        this.learned.delete(from)
        this.track(this.syncWith(from).catch(() => undefined))
      } else {
        this.after(check, Math.min(LEARNED_QUIET_MS - idle, deadline - Date.now()))
      }
    }
    this.after(check, LEARNED_QUIET_MS + this.connectDelay())
  }

  /** How long since the last announcement from `peer`, or gossip on the partitions it announced. */
  private learnedIdleMs(peer: string): number {
    const waiting = this.learned.get(peer)
    if (waiting === undefined) return Infinity
    let idle = Date.now() - waiting.since
    const idleMs = this.init.gossipIdleMs
    if (idleMs !== undefined) {
      for (const id of waiting.partitions) {
        const { table, partition } = parsePartitionId(id)
        idle = Math.min(idle, idleMs(table, partition))
      }
    }
    return idle
  }

  /**
   * Runs one anti-entropy round with a connected peer now, as the initiator. Resolves with the
   * round's figures, or null if a round with that peer is already running.
   */
  async syncWith(peer: PeerId | string): Promise<RoundStats | null> {
    const id = peer.toString()
    if (!this.started) return null
    if (this.busy.has(id)) {
      // The running round may have compared roots before the change that asked for this one.
      this.again.add(id)
      return null
    }
    this.acquire(id)
    this.initiating.add(id)
    const started = Date.now()
    const before = { in: this.counters.bytesIn, out: this.counters.bytesOut }
    let stream: Stream | undefined
    try {
      const signal = this.abort.signal
      stream = await this.node.libp2p.dialProtocol(typeof peer === 'string' ? peerIdFromString(peer) : peer, SYNC_PROTOCOL, { signal })
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      const ask: Ask = async (request) => {
        const bytes = encodeRequest(request)
        const timeout = AbortSignal.any([signal, AbortSignal.timeout(this.init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)])
        this.counters.bytesOut += bytes.length
        this.counters.framesOut++
        await lp.write(bytes, { signal: timeout })
        const response = (await lp.read({ signal: timeout })).subarray()
        this.counters.bytesIn += response.length
        this.counters.framesIn++
        return decodeResponse(response, request.type)
      }
      const stats = await reconcile(this.replica, ask, {
        from: id,
        signal,
        ...(this.init.pageBytes === undefined ? {} : { pageBytes: this.init.pageBytes }),
        onProgress: (event) => this.progress(id, event),
      })
      await stream.close().catch(() => undefined)
      this.finishRound(id, started, before, stats, null)
      for (const e of stats.errors) this.logger.warn(`anti-entropy with ${id}: ${e}`)
      return stats
    } catch (error) {
      stream?.abort(error as Error)
      // The peer is running its own round with us (started at the same moment): that one covers both directions.
      if ((error as { code?: string }).code === 'BUSY') return null
      if (!this.abort.signal.aborted) {
        this.finishRound(id, started, before, null, (error as Error).message)
        this.logger.warn(`anti-entropy with ${id} failed: ${(error as Error).message}`)
      }
      throw error
    } finally {
      this.initiating.delete(id)
      this.release(id)
      for (const key of [...this.loading.keys()]) if (key.startsWith(id + ID_SEP)) this.loading.delete(key)
    }
  }

  private finishRound(peer: string, started: number, before: { in: number; out: number }, stats: RoundStats | null, error: string | null): void {
    if (stats !== null) {
      this.counters.rowsIn += stats.rowsReceived
      this.counters.rowsOut += stats.rowsSent
      this.counters.rowsRepaired += stats.changedHere
    }
    const ok = error === null && (stats?.errors.length ?? 0) === 0
    if (ok) this.roundCompleted(peer, started)
    this.record(peer, started, { rowsReceived: stats?.rowsReceived ?? 0, rowsSent: stats?.rowsSent ?? 0, bytesIn: this.counters.bytesIn - before.in, bytesOut: this.counters.bytesOut - before.out }, ok, error)
  }

  private record(peer: string, started: number, figures: { rowsReceived: number; rowsSent: number; bytesIn: number; bytesOut: number }, ok: boolean, error: string | null): void {
    this.counters.rounds++
    this.peers.set(peer, {
      peer,
      state: 'idle',
      lastRound: { at: new Date().toISOString(), ok, durationMs: Date.now() - started, ...figures, ...(error === null ? {} : { error }) },
    })
  }

  private progress(from: string, event: LoadProgressEvent): void {
    const key = from + ID_SEP + partitionId(event.table, event.partition)
    const entry: LoadProgress = { table: event.table, partition: event.partition, from, received: event.received, expected: event.expected }
    if (event.done) this.loading.delete(key)
    else this.loading.set(key, entry)
    this.onProgress?.({ ...entry, done: event.done })
  }

  /** Serves one inbound stream: one answer per request, until the initiator closes it. */
  private async respond(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    const lp: LengthPrefixedStream = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    this.acquire(from)
    const started = Date.now()
    const figures = { rowsReceived: 0, rowsSent: 0, bytesIn: 0, bytesOut: 0 }
    let served = 0
    let closedByInitiator = false
    // Rows pushed to us count as a load too (an initiator holding what we lack pushes it).
    const theirRows = new Map<string, number>()
    const pushed = new Map<string, LoadProgressEvent>()
    try {
      for (;;) {
        let frame: Uint8Array
        try {
          const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(RESPONDER_IDLE_MS)])
          frame = (await lp.read({ signal })).subarray()
        } catch (error) {
          closedByInitiator = (error as Error).name === 'UnexpectedEOFError'
          if (closedByInitiator || stream.readStatus !== 'readable' || this.abort.signal.aborted) break
          throw new ProtocolError(`unreadable frame: ${(error as Error).message}`, { cause: error })
        }
        this.counters.bytesIn += frame.length
        this.counters.framesIn++
        figures.bytesIn += frame.length
        const request = decodeRequest(frame)
        if (request.type === 'hello' && this.initiating.has(from) && this.node.peerId.toString() < from) {
          // Both sides started a round at once: one round covers both directions, so the peer
          // with the smaller id keeps its own and declines the other's.
          await lp.write(encodeResponse({ type: 'error', code: 'BUSY', message: 'a round with you is already running from this side' }), { signal: this.abort.signal })
          await stream.close().catch(() => undefined)
          return
        }
        const response = await answer(this.replica, request, from)
        if (request.type === 'push' && response.type === 'push') {
          this.counters.rowsIn += request.rows.length
          figures.rowsReceived += request.rows.length
          const id = partitionId(request.table, request.partition)
          const entry = pushed.get(id) ?? { table: request.table, partition: request.partition, received: 0, expected: Math.max(0, (theirRows.get(id) ?? 0) - this.source.rowCount(request.table, request.partition)), done: false }
          entry.received += request.rows.length
          entry.expected = Math.max(entry.expected, entry.received)
          pushed.set(id, entry)
          this.progress(from, entry)
          this.counters.rowsRepaired += response.applied
        } else if (request.type === 'hello') {
          for (const r of request.roots) theirRows.set(partitionId(r.table, r.partition), r.rows)
          this.learnPartitions(request.roots)
        } else if (response.type === 'range' || response.type === 'fetch') {
          const sent = response.rows.filter((r) => r.bytes !== null).length
          this.counters.rowsOut += sent
          figures.rowsSent += sent
        }
        const bytes = encodeResponse(response)
        this.counters.bytesOut += bytes.length
        this.counters.framesOut++
        figures.bytesOut += bytes.length
        await lp.write(bytes, { signal: this.abort.signal })
        served++
      }
      await stream.close().catch(() => undefined)
      if (served > 0) this.record(from, started, figures, true, null)
      if (served > 0 && closedByInitiator) this.roundCompleted(from, started)
    } catch (error) {
      if (!this.abort.signal.aborted) {
        this.refusals.refuse(reasonOf(error), `anti-entropy request from ${from} refused, stream closed: ${(error as Error).message}`)
        this.record(from, started, figures, false, (error as Error).message)
      }
      stream.abort(error as Error)
    } finally {
      for (const entry of pushed.values()) this.progress(from, { ...entry, done: true })
      this.release(from)
    }
  }

  private acquire(peer: string): void {
    this.busy.set(peer, (this.busy.get(peer) ?? 0) + 1)
  }

  private release(peer: string): void {
    const left = (this.busy.get(peer) ?? 1) - 1
    if (left > 0) {
      this.busy.set(peer, left)
      return
    }
    this.busy.delete(peer)
    const opened = this.connectedDuringRound.get(peer)
    this.connectedDuringRound.delete(peer)
    if (this.again.delete(peer)) this.later(peer, this.connectDelay())
    else if (opened !== undefined) this.after(() => this.catchUp(peer, opened), this.connectDelay())
  }

  private learnPartitions(roots: ReadonlyArray<{ table: string; partition: string }>): void {
    if (this.onPartitionLearned === undefined) return
    for (const r of roots) if (!this.source.holds(r.table, r.partition)) this.onPartitionLearned(r.table, r.partition)
  }

  private roundCompleted(peer: string, started: number): void {
    this.lastGoodRound.set(peer, Math.max(started, this.lastGoodRound.get(peer) ?? 0))
  }

  private readonly onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    if (!event.detail.protocols.includes(SYNC_PROTOCOL)) return
    const peer = event.detail.peerId.toString()
    const opened = event.detail.connection?.timeline.open
    this.after(() => this.catchUp(peer, opened), this.connectDelay())
  }

  /**
   * The round a new connection asks for. Identify also runs again on a live connection when the
   * peer's addresses or protocols change (identify push), and both peers ask at once: a round
   * that started after the connection opened, from either side, already caught up with everything
   * from before it (gossip carries what came after), so another one would only repeat it.
   */
  private catchUp(peer: string, opened: number | undefined): void {
    if (opened !== undefined) {
      if ((this.lastGoodRound.get(peer) ?? -Infinity) >= opened) return
      if (this.busy.has(peer)) {
        this.connectedDuringRound.set(peer, Math.min(opened, this.connectedDuringRound.get(peer) ?? Infinity))
        return
      }
    }
    this.track(this.syncWith(peer).catch(() => undefined))
  }

  private connectDelay(): number {
    return Math.random() * (this.init.connectDelayMs ?? DEFAULT_CONNECT_DELAY_MS)
  }

  private later(peer: string, ms: number): void {
    this.after(() => this.track(this.syncWith(peer).catch(() => undefined)), ms)
  }

  private after(fn: () => void, ms: number): void {
    if (!this.started) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      fn()
    }, ms)
    this.timers.add(timer)
  }

  private schedulePeriodic(): void {
    const interval = this.init.intervalMs ?? DEFAULT_INTERVAL_MS
    if (interval <= 0 || !this.started) return
    this.periodic = setTimeout(() => {
      this.track(this.periodicRound())
      this.schedulePeriodic()
    }, interval * (0.5 + Math.random()))
  }

  private async periodicRound(): Promise<void> {
    const candidates: PeerId[] = []
    for (const peer of this.node.connectedPeers()) {
      const known = await this.node.libp2p.peerStore.get(peer).catch(() => null)
      if (known?.protocols.includes(SYNC_PROTOCOL) === true && !this.busy.has(peer.toString())) candidates.push(peer)
    }
    const chosen = candidates.sort(() => Math.random() - 0.5).slice(0, this.init.peersPerRound ?? DEFAULT_PEERS_PER_ROUND)
    await Promise.all(chosen.map((peer) => this.syncWith(peer).catch(() => undefined)))
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work)
    void work.finally(() => this.running.delete(work))
    return work
  }
}
