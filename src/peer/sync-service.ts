import type { Connection, IdentifyResult, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { ShoalNode } from '../net/shoal-node.js'
import { ProtocolError } from '../errors.js'
import { errorText, silentLogger, type Logger } from '../log.js'
import type { ReplicaSource } from '../store/replica-source.js'
import { ID_SEP, partitionId } from '../table/ids.js'
import type { Carries } from '../sync/carries.js'
import { answer, newRoundStats, reconcile, type Ask, type LoadProgressEvent, type RoundStats } from '../sync/reconciler.js'
import { DEFAULT_CONNECT_DELAY_MS, DEFAULT_INTERVAL_MS, DEFAULT_PEERS_PER_ROUND, LEARNED_MAX_WAIT_MS, LEARNED_QUIET_MS, RoundScheduler } from '../sync/round-scheduler.js'
import { StoreReplica } from '../sync/store-replica.js'
import { decodeRequest, decodeResponse, deflatedProtocol, encodeRequest, encodeResponse, feedProtocol, MAX_FRAME_BYTES, SYNC_PROTOCOLS, SYNC_PROTOCOLS_PLAIN } from '../sync/sync-messages.js'
import { packFrame, unpackFrame } from '../sync/frame-compression.js'
import { LinkMeter } from '../sync/link-meter.js'
import { SilenceWatch } from './silence.js'
import type { LoadProgress, SyncPeerStatus, SyncPeerTotals, SyncStatus } from '../status.js'
import { BucketsByKey } from '../sync/token-bucket.js'
import type { TrustGate } from '../sync/trust-gate.js'
import { reasonOf, REFUSED, Refusals } from './refusals.js'

export interface SyncServiceInit {
  /** What this peer carries (tables not listed: all). */
  carries?: Carries
  /** In a private mesh: who may do what (replication by signed changesets; only admitted peers are served). */
  trust?: { gate: TrustGate; admitted: (peer: string) => boolean }
  logger?: Logger
  /** Where refusals are counted and logged (shared with gossip in a running peer). */
  refusals?: Refusals
  /** Mean time between periodic rounds (default 30 s; each wait is jittered to 50–150 %). 0 turns periodic rounds off. */
  intervalMs?: number
  /** Peers reconciled with per periodic round (default 3, chosen at random). */
  peersPerRound?: number
  /** A round starts this long (jittered 0–100 %) after a peer connects (default 500 ms), so both sides rarely start at once. */
  connectDelayMs?: number
  /**
   * A round waiting on its peer ends once nothing has arrived from it for this long (default
   * 30 s): silence, not total duration, so a slow link's long pages never time out.
   */
  requestTimeoutMs?: number
  /** Offer and accept deflated pages (/shoal/sync/1.2.0 and 1.1.0; default true); false speaks 1.2.0-plain (the change feed in plain frames) and 1.0.0. */
  deflate?: boolean
  /** Range page and push batch size; default: sized to each peer's measured throughput (sync/link-meter.ts). */
  pageBytes?: number
  /** Inbound rounds served at once, from all peers (default MAX_INBOUND_SESSIONS); one per peer. */
  maxInboundSessions?: number
  /** Requests a peer may make per second, and in a burst (defaults SYNC_REQUESTS_PER_SECOND, SYNC_REQUEST_BURST). */
  requestsPerSecond?: number
  requestBurst?: number
  /**
   * Milliseconds since gossip last brought deltas for a partition (Infinity if never). A round
   * asked for by a partition announcement waits until the announcement and gossip on it have been
   * quiet for LEARNED_QUIET_MS, so it fetches what gossip missed instead of racing gossip for the
   * same rows.
   */
  gossipIdleMs?: (table: string, partition: string) => number
}

/** This peer's anti-entropy with all peers: the per-peer totals' figures, summed, and more. */
export interface SyncCounters extends SyncPeerTotals {
  /** Frames (requests and answers) received and sent. */
  framesIn: number
  framesOut: number
  /** Rows changed here by anti-entropy. */
  rowsRepaired: number
  /** Differing partitions this peer's rounds brought in sync by the change feed, and by the digest tree. */
  partitionsByFeed: number
  partitionsByTree: number
  /** Frame bytes by message type (a request and its answer count under the request's type), both roles. */
  bytesByMessage: Record<string, { in: number; out: number }>
}

const DEFAULT_SILENCE_MS = 30_000
/**
 * A responder drops a stream left idle this long between requests: an initiator asks again as soon
 * as it has applied an answer, so a long silence is a stalled or hostile peer holding a session.
 */
export const RESPONDER_IDLE_MS = 30_000
/** Peers whose figures (status, measured throughput) are kept; past it, those met longest ago are dropped. */
export const MAX_TRACKED_PEERS = 1024
/** Inbound rounds served at once (each holds a stream and may read the store hard); more are answered BUSY. */
export const MAX_INBOUND_SESSIONS = 8
/**
 * Sync requests one peer may make per second, and in a burst. A request answers up to a page
 * (256 KiB), so 200/s is ~50 MB/s per peer, more than a link carries; past it a peer is told
 * RATE_LIMITED and the stream closed.
 */
export const SYNC_REQUESTS_PER_SECOND = 200
export const SYNC_REQUEST_BURST = 400

/**
 * The repair path of replication over libp2p: serves `/shoal/sync/1.0.0` and runs anti-entropy
 * rounds (sync/reconciler.ts) with peers when sync/round-scheduler.ts says so: when they connect,
 * when they announce a partition this peer carries, and periodically with a few random peers. At
 * most one round per peer at a time.
 */
export class SyncService {
  readonly counters: SyncCounters = { rounds: 0, failedRounds: 0, rowsIn: 0, rowsOut: 0, bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, rowsRepaired: 0, partitionsByFeed: 0, partitionsByTree: 0, bytesByMessage: {} }
  readonly refusals: Refusals
  /** Called as rows of a partition arrive in a round (initial loads, big repairs). */
  onProgress: ((progress: LoadProgress & { done: boolean }) => void) | undefined
  private readonly replica: StoreReplica
  private readonly logger: Logger
  private readonly scheduler: RoundScheduler
  private readonly peers = new Map<string, SyncPeerStatus>()
  private readonly loading = new Map<string, LoadProgress>()
  /** When each load in `loading` began (its first page), for its ETA. */
  private readonly loadStarted = new Map<string, number>()
  private readonly abort = new AbortController()
  private readonly running = new Set<Promise<unknown>>()
  /** Inbound rounds being served, per peer. */
  private readonly inbound = new Map<string, number>()
  /**
   * Partitions a round is reconciling now, outbound or inbound: another round leaves them alone,
   * so a peer missing rows takes each from one source at a time (on a slow link, several sources
   * sending the same rows at once each took a share of the link).
   */
  private readonly claimed = new Set<string>()
  private readonly requestBuckets: BucketsByKey
  /** Each peer's measured throughput, which sizes the pages asked of it and pushed to it. */
  private readonly meters = new Map<string, LinkMeter>()
  private started = false

  constructor(
    private readonly source: ReplicaSource,
    private readonly node: ShoalNode,
    private readonly init: SyncServiceInit = {},
  ) {
    this.logger = init.logger ?? silentLogger
    this.refusals = init.refusals ?? new Refusals(this.logger)
    this.replica = new StoreReplica(source, init.carries ?? {}, (reason, message) => this.refusals.refuse(reason, message), init.trust?.gate)
    this.requestBuckets = new BucketsByKey(init.requestsPerSecond ?? SYNC_REQUESTS_PER_SECOND, init.requestBurst ?? SYNC_REQUEST_BURST)
    this.scheduler = new RoundScheduler({
      clock: {
        now: () => Date.now(),
        schedule: (fn, ms) => {
          const timer = setTimeout(fn, ms)
          return () => clearTimeout(timer)
        },
      },
      random: Math.random,
      intervalMs: init.intervalMs ?? DEFAULT_INTERVAL_MS,
      peersPerRound: init.peersPerRound ?? DEFAULT_PEERS_PER_ROUND,
      connectDelayMs: init.connectDelayMs ?? DEFAULT_CONNECT_DELAY_MS,
      self: node.peerId.toString(),
      learnedQuietMs: LEARNED_QUIET_MS,
      learnedMaxWaitMs: LEARNED_MAX_WAIT_MS,
      candidates: () => this.candidates(),
      run: (peer) => void this.track(this.syncWith(peer).catch(() => undefined)),
      ...(init.gossipIdleMs === undefined ? {} : { gossipIdleMs: init.gossipIdleMs }),
    })
  }

  async start(): Promise<void> {
    this.started = true
    await this.node.libp2p.handle(this.protocols(), (stream, connection) => this.track(this.respond(stream, connection)), { maxInboundStreams: 4 })
    this.node.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.scheduler.start()
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.node.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.scheduler.stop()
    this.abort.abort()
    await Promise.all(SYNC_PROTOCOLS.map((p) => this.node.libp2p.unhandle(p).catch(() => undefined)))
    await Promise.allSettled([...this.running])
  }

  status(): SyncStatus {
    return {
      rounds: this.counters.rounds,
      failedRounds: this.counters.failedRounds,
      rowsRepaired: this.counters.rowsRepaired,
      partitionsByFeed: this.counters.partitionsByFeed,
      partitionsByTree: this.counters.partitionsByTree,
      peers: [...this.peers.values()].map((p) => ({ ...p, totals: { ...p.totals }, state: this.scheduler.isBusy(p.peer) ? 'syncing' : 'idle' })),
      loading: [...this.loading.values()].map((l) => ({ ...l })),
    }
  }

  /** A private mesh's peer has been admitted: reconcile with it as with a peer just connected. */
  peerAdmitted(peer: string): void {
    if (this.started) this.scheduler.connected(peer, undefined)
  }

  /**
   * A peer said (by gossip) that it holds a partition this peer carries (see
   * RoundScheduler.learnedPartition). The round is with that peer if it is connected, else with
   * the neighbour `via` which gossip brought it (it carries the partition's topic).
   */
  partitionLearned(table: string, partition: string, from: string, via = from): void {
    if (!this.started) return
    const peer = this.connected(from) ? from : via
    this.scheduler.learnedPartition(peer, table, partition)
  }

  /** Whether a round could run now: a connection, and not a relayed one (limited in time and bytes; WebRTC is met over one). */
  private connected(peer: string): boolean {
    try {
      return this.node.libp2p.getConnections(peerIdFromString(peer)).some((c) => c.limits === undefined)
    } catch {
      return false
    }
  }

  /**
   * Runs one anti-entropy round with a connected peer now, as the initiator. Resolves with the
   * round's figures, or null if a round with that peer is already running (another follows it)
   * or it is not connected.
   */
  async syncWith(peer: PeerId | string): Promise<RoundStats | null> {
    const id = peer.toString()
    if (!this.started || !this.scheduler.outboundStarting(id)) return null
    const started = Date.now()
    const before = { in: this.counters.bytesIn, out: this.counters.bytesOut }
    let outcome: 'ok' | 'failed' | 'declined' = 'failed'
    let stream: Stream | undefined
    let silence: SilenceWatch | undefined
    const stats = newRoundStats()
    try {
      const signal = this.abort.signal
      // Rounds run over the connections the mesh keeper keeps: dialling here would open a second
      // connection to a peer it is dialling anyway (two WebRTC connections between two tabs).
      if (!this.connected(id)) {
        outcome = 'declined'
        return null
      }
      stream = await this.node.libp2p.dialProtocol(typeof peer === 'string' ? peerIdFromString(peer) : peer, this.protocols(), { signal })
      const deflate = deflatedProtocol(stream.protocol)
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      const meter = this.meterOf(id)
      const watch = new SilenceWatch(stream, id, this.init.requestTimeoutMs ?? DEFAULT_SILENCE_MS, signal)
      silence = watch
      const ask: Ask = async (request) => {
        const frame = encodeRequest(request)
        const bytes = deflate ? await packFrame(frame) : frame
        this.counters.bytesOut += bytes.length
        this.counters.framesOut++
        const asked = performance.now()
        let response: Uint8Array
        try {
          const waiting = watch.begin()
          await lp.write(bytes, { signal: waiting })
          response = (await lp.read({ signal: waiting })).subarray()
        } finally {
          watch.end()
        }
        this.counters.bytesIn += response.length
        this.counters.framesIn++
        this.countMessage(request.type, response.length, bytes.length)
        const decoded = deflate ? await unpackFrame(response, MAX_FRAME_BYTES) : response
        // Both directions share the link: a page pushed counts as much as one received.
        meter.observe(Math.max(frame.length, decoded.length), performance.now() - asked)
        return decodeResponse(decoded, request.type)
      }
      await reconcile(this.replica, ask, {
        from: id,
        signal,
        pageBytes: this.init.pageBytes ?? (() => meter.pageBytes()),
        onProgress: (event) => this.progress(id, event),
        stats,
        claim: (table, partition) => this.claim(partitionId(table, partition)),
        feed: feedProtocol(stream.protocol),
      })
      await stream.close().catch(() => undefined)
      outcome = stats.errors.length === 0 ? 'ok' : 'failed'
      this.finishRound(id, started, before, stats, null)
      if (stats.changedHere > 0) void this.spread(id)
      for (const e of stats.errors) this.logger.warn(`anti-entropy with ${id}: ${e}`)
      return stats
    } catch (error) {
      stream?.abort(error as Error)
      // The peer is running its own round with us (started at the same moment): that one covers both directions.
      if ((error as { code?: string }).code === 'BUSY') {
        outcome = 'declined'
        return null
      }
      if (!this.abort.signal.aborted) {
        // What the round did before it failed is applied and durable: it counts.
        this.finishRound(id, started, before, stats, errorText(error))
        this.logger.warn(`anti-entropy with ${id} failed: ${errorText(error)}`)
      }
      throw error
    } finally {
      silence?.close()
      this.scheduler.outboundEnded(id, started, outcome, outcome === 'ok' ? stats.differing === 0 && stats.busyElsewhere === 0 : undefined)
      for (const key of [...this.loading.keys()]) if (key.startsWith(id + ID_SEP)) this.loading.delete(key)
    }
  }

  private finishRound(peer: string, started: number, before: { in: number; out: number }, stats: RoundStats, error: string | null): void {
    this.counters.rowsIn += stats.rowsReceived
    this.counters.rowsOut += stats.rowsSent
    this.counters.rowsRepaired += stats.changedHere
    this.counters.partitionsByFeed += stats.byFeed
    this.counters.partitionsByTree += Math.max(0, stats.differing - stats.byFeed - stats.busyElsewhere - stats.errors.length)
    const ok = error === null && stats.errors.length === 0
    // A round that went on past failed partitions still says why it failed.
    const why = error ?? (stats.errors.length === 0 ? null : stats.errors.length === 1 ? stats.errors[0]! : `${stats.errors[0]} (and ${stats.errors.length - 1} more partitions)`)
    this.record(peer, started, { rowsReceived: stats.rowsReceived, rowsSent: stats.rowsSent, bytesIn: this.counters.bytesIn - before.in, bytesOut: this.counters.bytesOut - before.out }, ok, why)
  }

  private countMessage(type: string, bytesIn: number, bytesOut: number): void {
    const entry = (this.counters.bytesByMessage[type] ??= { in: 0, out: 0 })
    entry.in += bytesIn
    entry.out += bytesOut
  }

  /** The sync protocols this peer speaks, preferred first. */
  private protocols(): string[] {
    return this.init.deflate === false ? SYNC_PROTOCOLS_PLAIN : SYNC_PROTOCOLS
  }

  private meterOf(peer: string): LinkMeter {
    let meter = this.meters.get(peer)
    if (meter === undefined) {
      meter = new LinkMeter()
      this.meters.set(peer, meter)
      // Bounded like every per-peer map: the peers met longest ago go first.
      if (this.meters.size > MAX_TRACKED_PEERS) this.meters.delete(this.meters.keys().next().value!)
    }
    return meter
  }

  /** Claims a partition for one round; null if another round holds it (see `claimed`). */
  private claim(pid: string): (() => void) | null {
    if (this.claimed.has(pid)) return null
    this.claimed.add(pid)
    return () => this.claimed.delete(pid)
  }

  private record(peer: string, started: number, figures: { rowsReceived: number; rowsSent: number; bytesIn: number; bytesOut: number }, ok: boolean, error: string | null): void {
    this.counters.rounds++
    if (!ok) this.counters.failedRounds++
    const totals = this.peers.get(peer)?.totals ?? { rounds: 0, failedRounds: 0, rowsIn: 0, rowsOut: 0, bytesIn: 0, bytesOut: 0 }
    totals.rounds++
    if (!ok) totals.failedRounds++
    totals.rowsIn += figures.rowsReceived
    totals.rowsOut += figures.rowsSent
    totals.bytesIn += figures.bytesIn
    totals.bytesOut += figures.bytesOut
    if (!this.peers.has(peer) && this.peers.size >= MAX_TRACKED_PEERS) this.peers.delete(this.peers.keys().next().value!)
    this.peers.set(peer, {
      peer,
      state: 'idle',
      lastRound: { at: new Date().toISOString(), ok, durationMs: Date.now() - started, ...figures, ...(error === null ? {} : { error }) },
      totals,
    })
  }

  private progress(from: string, event: LoadProgressEvent): void {
    const key = from + ID_SEP + partitionId(event.table, event.partition)
    const now = Date.now()
    const startedAt = this.loadStarted.get(key) ?? now
    const entry: LoadProgress = { table: event.table, partition: event.partition, from, received: event.received, expected: event.expected }
    const eta = etaSeconds(event.received, event.expected, now - startedAt)
    if (eta !== null) entry.etaSeconds = eta
    if (event.done) {
      this.loading.delete(key)
      this.loadStarted.delete(key)
    } else {
      this.loading.set(key, entry)
      this.loadStarted.set(key, startedAt)
    }
    this.onProgress?.({ ...entry, done: event.done })
  }

  /** Turns a session away: one error answer, then the stream is closed. */
  private async refuseSession(lp: LengthPrefixedStream, stream: Stream, code: string, message: string): Promise<void> {
    const frame = encodeResponse({ type: 'error', code, message })
    await lp.write(deflatedProtocol(stream.protocol) ? await packFrame(frame) : frame, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(5_000)]) }).catch(() => undefined)
    await stream.close().catch(() => undefined)
  }

  /** Serves one inbound stream: one answer per request, until the initiator closes it. */
  private async respond(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    const deflate = deflatedProtocol(stream.protocol)
    const lp: LengthPrefixedStream = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    const total = [...this.inbound.values()].reduce((a, b) => a + b, 0)
    const max = this.init.maxInboundSessions ?? MAX_INBOUND_SESSIONS
    if ((this.inbound.get(from) ?? 0) > 0 || total >= max) {
      const why = (this.inbound.get(from) ?? 0) > 0 ? 'a round with you is already being served' : `this peer serves at most ${max} rounds at once`
      this.refusals.refuse(REFUSED.BUSY, `anti-entropy session from ${from} turned away: ${why}`)
      await this.refuseSession(lp, stream, 'BUSY', `${why}; try again later`)
      return
    }
    if (this.init.trust !== undefined && !this.init.trust.admitted(from)) {
      this.refusals.refuse('NOT_ADMITTED', `anti-entropy session from ${from} turned away: it has not presented a valid admission to this mesh`)
      await this.refuseSession(lp, stream, 'NOT_ADMITTED', 'present a valid admission to this mesh first (/shoal/admit/1.0.0)')
      return
    }
    this.inbound.set(from, (this.inbound.get(from) ?? 0) + 1)
    this.scheduler.inboundStarted(from)
    const started = Date.now()
    const figures = { rowsReceived: 0, rowsSent: 0, bytesIn: 0, bytesOut: 0 }
    let served = 0
    let closedByInitiator = false
    let completed = false
    // Rows pushed to us count as a load too (an initiator holding what we lack pushes it).
    const theirRows = new Map<string, number>()
    const pushed = new Map<string, LoadProgressEvent>()
    // Partitions this session takes pushes for, held until it ends (see `claimed`).
    const held = new Map<string, () => void>()
    const claim = (table: string, partition: string): boolean => {
      const pid = partitionId(table, partition)
      if (held.has(pid)) return true
      const release = this.claim(pid)
      if (release === null) return false
      held.set(pid, release)
      return true
    }
    const silence = new SilenceWatch(stream, from, RESPONDER_IDLE_MS, this.abort.signal)
    try {
      for (;;) {
        let wire: Uint8Array
        try {
          wire = (await lp.read({ signal: silence.begin() })).subarray()
        } catch (error) {
          closedByInitiator = (error as Error).name === 'UnexpectedEOFError'
          if (closedByInitiator || stream.readStatus !== 'readable' || this.abort.signal.aborted) break
          throw new ProtocolError(`unreadable frame: ${errorText(error)}`, { cause: error })
        } finally {
          silence.end()
        }
        this.counters.bytesIn += wire.length
        this.counters.framesIn++
        figures.bytesIn += wire.length
        if (!this.requestBuckets.take(from, Date.now())) {
          this.refusals.refuse(REFUSED.RATE_LIMITED, `anti-entropy requests from ${from} over ${this.init.requestsPerSecond ?? SYNC_REQUESTS_PER_SECOND}/s: session closed`)
          await this.refuseSession(lp, stream, REFUSED.RATE_LIMITED, 'too many requests; slow down')
          return
        }
        const request = decodeRequest(deflate ? await unpackFrame(wire, MAX_FRAME_BYTES) : wire)
        if (request.type === 'hello' && this.scheduler.shouldDecline(from, this.node.peerId.toString())) {
          // Both sides started a round at once: one round covers both directions, so the peer
          // with the smaller id keeps its own and declines the other's.
          const busy = encodeResponse({ type: 'error', code: 'BUSY', message: 'a round with you is already running from this side' })
          await lp.write(deflate ? await packFrame(busy) : busy, { signal: this.abort.signal })
          await stream.close().catch(() => undefined)
          return
        }
        const response = await answer(this.replica, request, from, claim)
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
        } else if (response.type === 'range' || response.type === 'fetch') {
          const sent = response.rows.filter((r) => r.bytes !== null).length
          this.counters.rowsOut += sent
          figures.rowsSent += sent
        }
        const frame = encodeResponse(response)
        const bytes = deflate ? await packFrame(frame) : frame
        this.countMessage(request.type, wire.length, bytes.length)
        this.counters.bytesOut += bytes.length
        this.counters.framesOut++
        figures.bytesOut += bytes.length
        try {
          await lp.write(bytes, { signal: silence.begin() })
        } finally {
          silence.end()
        }
        served++
      }
      await stream.close().catch(() => undefined)
      if (served > 0) this.record(from, started, figures, true, null)
      completed = served > 0 && closedByInitiator
      if (figures.rowsReceived > 0) void this.spread(from)
    } catch (error) {
      if (!this.abort.signal.aborted) {
        this.refusals.refuse(reasonOf(error), `anti-entropy request from ${from} refused, stream closed: ${errorText(error)}`)
        this.record(from, started, figures, false, errorText(error))
      }
      stream.abort(error as Error)
    } finally {
      silence.close()
      for (const release of held.values()) release()
      for (const entry of pushed.values()) this.progress(from, { ...entry, done: true })
      const left = (this.inbound.get(from) ?? 1) - 1
      if (left > 0) this.inbound.set(from, left)
      else this.inbound.delete(from)
      this.scheduler.inboundEnded(from, started, completed)
    }
  }

  private readonly onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    if (!SYNC_PROTOCOLS.some((p) => event.detail.protocols.includes(p))) return
    // In a private mesh the round waits for the admission handshake (peerAdmitted).
    if (this.init.trust !== undefined && !this.init.trust.admitted(event.detail.peerId.toString())) return
    this.scheduler.connected(event.detail.peerId.toString(), event.detail.connection?.timeline.open)
  }

  /** Rows from `from` changed this replica: the other peers get a round soon (RoundScheduler.repaired). */
  private async spread(from: string): Promise<void> {
    const peers = await this.candidates().catch(() => [] as string[])
    this.scheduler.repaired(from, peers)
  }

  /** Connected peers (not only through a relay) that speak the sync protocol. */
  private async candidates(): Promise<string[]> {
    const out: string[] = []
    for (const peer of this.node.connectedPeers()) {
      if (!this.connected(peer.toString())) continue
      const known = await this.node.libp2p.peerStore.get(peer).catch(() => null)
      if (known === null || !SYNC_PROTOCOLS.some((p) => known.protocols.includes(p))) continue
      if (this.init.trust !== undefined && !this.init.trust.admitted(peer.toString())) continue
      out.push(peer.toString())
    }
    return out
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work)
    void work.finally(() => this.running.delete(work))
    return work
  }
}

/** Seconds left of a load at its rate so far; null while too young to tell or already complete. */
export function etaSeconds(received: number, expected: number, elapsedMs: number): number | null {
  if (elapsedMs < 1000 || received <= 0 || expected <= received) return null
  return Math.ceil(((expected - received) * elapsedMs) / received / 1000)
}

