import type { Logger } from '../log.js'
import type { ShoalNode } from '../net/shoal-node.js'
import type { Shoal } from '../shoal.js'
import type { PeerCounters, PeerStatus } from '../status.js'
import type { Carries } from '../sync/carries.js'
import { StoreChangesets } from '../sync/store-changesets.js'
import { AdmissionService } from './admission.js'
import { GossipReplicator, type GossipReplicatorInit } from './gossip-replicator.js'
import { Refusals } from './refusals.js'
import { SyncService, type SyncServiceInit } from './sync-service.js'
import type { PeerTrust } from './trust.js'

/** Anti-entropy knobs (round interval, page sizes). */
export type SyncOptions = Omit<SyncServiceInit, 'carries' | 'logger' | 'refusals'>
/** Gossip knobs (coalescing window, per-origin rates, topic cap). */
export type GossipOptions = Pick<GossipReplicatorInit, 'coalesceMs' | 'messagesPerSecond' | 'bytesPerSecond' | 'maxTopics' | 'firstSubscriberWaitMs'>

export interface ReplicationInit {
  /** Which partitions this peer keeps (config `carries`). */
  carries: Carries
  /** Whether anti-entropy may deflate its pages and gossip its messages (config `deflate`). */
  deflate: boolean
  sync?: SyncOptions
  gossip?: GossipOptions
}

/**
 * What makes a store a peer, the same in a Node process and a browser tab: refusals counted by
 * reason, admission in a private mesh, gossip (fast path) and anti-entropy (repair path).
 * Made before the libp2p node (its gater is the admission's), started once the node runs.
 */
export class Replication {
  readonly refusals: Refusals
  readonly admission: AdmissionService | null
  private gossipService: GossipReplicator | null = null
  private syncService: SyncService | null = null
  private readonly undo: Array<() => Promise<void>> = []

  constructor(
    private readonly trust: PeerTrust | null,
    private readonly logger: Logger,
  ) {
    this.refusals = new Refusals(logger.child({ component: 'refusals' }))
    this.admission =
      trust === null
        ? null
        : new AdmissionService({
            membership: trust.membership,
            admission: trust.admission,
            logger: logger.child({ component: 'admission' }),
            refusals: this.refusals,
            onAdmitted: (peer) => {
              this.gossipService?.peerAdmitted(peer)
              this.syncService?.peerAdmitted(peer)
            },
            onRefused: (peer, reason) => trust.noteRefused(peer, reason),
          })
  }

  get gossip(): GossipReplicator {
    if (this.gossipService === null) throw new Error('replication has not started')
    return this.gossipService
  }

  get sync(): SyncService {
    if (this.syncService === null) throw new Error('replication has not started')
    return this.syncService
  }

  /** The connection gater: in a private mesh only admitted peers (and what `net` allows). */
  gater(net?: (peer: string) => boolean): ((peer: string) => boolean) | undefined {
    const admission = this.admission
    if (admission === null) return net
    return (peer) => admission.allows(peer) && (net?.(peer) ?? true)
  }

  /** For a node running a circuit relay: in a private mesh, only admitted peers may use it (waiting for a handshake in flight). */
  relayUser(): ((peer: string) => Promise<boolean>) | undefined {
    const admission = this.admission
    if (admission === null) return undefined
    return (peer) => admission.whenAdmitted(peer)
  }

  /** Starts gossip, admission and anti-entropy on a started node; on failure, stops what it started. */
  async start(db: Shoal, node: ShoalNode, init: ReplicationInit): Promise<void> {
    const { trust, admission, refusals, logger } = this
    try {
      const source = db.replication()
      const trusted = trust === null || admission === null ? undefined : { gate: trust.gate, admitted: (peer: string) => admission.admitted(peer) }
      // Built before anything else awaits: in a private mesh it filters gossipsub from the first RPC on.
      const gossip = new GossipReplicator(source, node, {
        deflate: init.deflate,
        ...init.gossip,
        carries: init.carries,
        logger: logger.child({ component: 'gossip' }),
        refusals,
        ...(trusted === undefined ? {} : { trust: { ...trusted, changesets: new StoreChangesets(source, trusted.gate, init.carries, (reason, message) => refusals.refuse(reason, message)) } }),
      })
      this.gossipService = gossip
      if (admission !== null) {
        await admission.start(node)
        this.undo.push(() => admission.stop())
      }
      const sync = new SyncService(source, node, {
        gossipIdleMs: (table, partition) => gossip.idleMs(table, partition),
        deflate: init.deflate,
        ...init.sync,
        carries: init.carries,
        logger: logger.child({ component: 'sync' }),
        refusals,
        ...(trusted === undefined ? {} : { trust: trusted }),
      })
      this.syncService = sync
      gossip.onPartitionLearned = (table, partition, from, via) => sync.partitionLearned(table, partition, from, via)
      gossip.start()
      this.undo.push(async () => gossip.stop())
      await sync.start()
      this.undo.push(() => sync.stop())
    } catch (error) {
      await this.stop()
      throw error
    }
  }

  /** Stops anti-entropy, admission and gossip (the node and the store are the caller's). Idempotent. */
  async stop(): Promise<void> {
    for (const step of this.undo.splice(0).reverse()) await step().catch(() => undefined)
  }

  /** What a running peer's status says of its network and replication (both kinds of peer). */
  networkStatus(node: ShoalNode): Pick<PeerStatus, 'peerId' | 'addresses' | 'connectedPeers' | 'sync' | 'mesh'> {
    const connected = node.connectedPeers().map((p) => p.toString())
    return {
      peerId: node.peerId.toString(),
      addresses: node.multiaddrs().map((a) => a.toString()),
      connectedPeers: connected,
      sync: this.sync.status(),
      mesh: this.trust?.status(connected) ?? null,
    }
  }

  counters(node: ShoalNode): PeerCounters {
    const g = this.gossip.counters
    const s = this.sync.counters
    return {
      deltasIn: g.deltasIn + s.rowsIn,
      deltasOut: g.deltasOut + s.rowsOut,
      bytesIn: g.bytesIn + s.bytesIn,
      bytesOut: g.bytesOut + s.bytesOut,
      syncRounds: s.rounds,
      syncRoundsFailed: s.failedRounds,
      rowsRepaired: s.rowsRepaired,
      syncPartitionsByFeed: s.partitionsByFeed,
      syncPartitionsByTree: s.partitionsByTree,
      refused: this.refusals.total,
      refusedByReason: this.refusals.counts(),
      connectedPeers: node.connectedPeers().length,
      syncBytesByMessage: Object.fromEntries(Object.entries(s.bytesByMessage).map(([k, v]) => [k, { ...v }])),
      syncByPeer: this.sync.status().peers.map((p) => ({ peer: p.peer, totals: p.totals })),
    }
  }
}
