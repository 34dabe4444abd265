import { ValidationError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { checkWebRtc, createBrowserNode, type WebRtcOptions } from '../net/browser-node.js'
import { loadOrCreatePeerKey } from '../net/identity.js'
import type { ShoalNode } from '../net/shoal-node.js'
import { Shoal } from '../shoal.js'
import type { PeerCounters, PeerStatus } from '../status.js'
import type { Carries } from '../sync/carries.js'
import type { TableSchema } from '../table/schema.js'
import { decodeJoinCode } from '../trust/join-code.js'
import { isPlainObject } from '../validation.js'
import type { GossipReplicator } from './gossip-replicator.js'
import { Replication, type GossipOptions, type SyncOptions } from './replication.js'
import type { SyncService } from './sync-service.js'
import { PeerTrust } from './trust.js'

export interface BrowserPeerOptions {
  /** Names the IndexedDB databases this peer keeps (its "data folder"). Default 'shoal'. */
  name?: string
  /** WebSocket multiaddrs of Node peers to join through, each ending in /p2p/<peer id> (`shoal start` prints them). */
  bootstrap: string[]
  /** Tables to define at start (existing ones are extended with new columns, never narrowed). */
  tables?: TableSchema[]
  /** Partial replication: table → the only partitions of it this peer keeps. */
  carries?: Record<string, string[]>
  /** Deflate anti-entropy pages with peers that allow it, and gossip where every subscriber reads it (default true). */
  deflate?: boolean
  logger?: Logger
  sync?: SyncOptions
  gossip?: GossipOptions
  /** Announce interval on the mesh's discovery topic (ms). */
  discoveryIntervalMs?: number
  /**
   * A private mesh to join: the join code of this tab's admission (the fragment of the link
   * `shoal mesh admit --peer <BrowserPeer.peerId(name)> … --link URL` prints). Without it the
   * peer joins an open mesh; a private mesh's peers hang up on it.
   */
  mesh?: string
  /**
   * Direct connections between tabs and devices over WebRTC, met through a circuit relay
   * (a Node peer with `"relay": true`). Default on, with no STUN/TURN servers: tabs on the same
   * network connect; give `iceServers` to cross NATs. false: tabs reach each other only through Node peers.
   */
  webrtc?: WebRtcOptions | false
}

/**
 * A Shoal peer in a browser tab: the same store (IndexedDB through `level`), the same gossip and
 * anti-entropy as a Node peer, over libp2p WebSockets to Node peers and WebRTC to other tabs
 * (met through a relay). A tab cannot listen, so it dials.
 */
export class BrowserPeer {
  private stopped = false
  /** The page's network (the browser's online/offline events). */
  private networkUp = true
  /** The app's own switch (setOnline). */
  private wanted = true
  private readonly onNetwork = (event: Event): void => {
    this.networkUp = event.type === 'online'
    void this.apply()
  }

  private constructor(
    readonly db: Shoal,
    readonly node: ShoalNode,
    private readonly replication: Replication,
    readonly name: string,
    /** This tab's trust in its private mesh, or null in an open mesh. */
    readonly trust: PeerTrust | null,
  ) {}

  /** The peer id a tab with this `name` has (its key is made and kept in IndexedDB if it has none yet): what an admission names. */
  static async peerId(name = 'shoal'): Promise<string> {
    return peerIdFromPrivateKey(await loadOrCreatePeerKey(name)).toString()
  }

  static async start(options: BrowserPeerOptions): Promise<BrowserPeer> {
    const init = checkOptions(options)
    const logger = options.logger ?? silentLogger
    // Checked before anything opens: a code for another key, or a lapsed admission, is refused here.
    const trust = options.mesh === undefined ? null : await PeerTrust.load(decodeJoinCode(options.mesh), init.name)
    const db = await Shoal.open({
      dir: init.name,
      logger: logger.child({ component: 'store' }),
      // In a private mesh the store's actor is the peer id: its changes are signed by that key.
      ...(trust === null ? {} : { actor: trust.self, signer: trust.signer, guard: trust.guard }),
    })
    try {
      if (trust === null || trust.mayDefineTables()) {
        for (const schema of options.tables ?? []) await db.defineTable(schema)
      }
      const replication = new Replication(trust, logger)
      const gater = replication.gater()
      const node = await createBrowserNode({
        dataDir: init.name,
        bootstrap: init.bootstrap,
        ...(options.discoveryIntervalMs === undefined ? {} : { discoveryIntervalMs: options.discoveryIntervalMs }),
        // A private mesh's changesets carry their author's signature: gossipsub's is left off.
        ...(trust === null ? {} : { signedGossip: false }),
        ...(gater === undefined ? {} : { gater }),
        ...(options.webrtc === undefined ? {} : { webrtc: options.webrtc }),
      })
      try {
        await replication.start(db, node, {
          carries: init.carries,
          deflate: options.deflate ?? true,
          ...(options.sync === undefined ? {} : { sync: options.sync }),
          ...(options.gossip === undefined ? {} : { gossip: options.gossip }),
        })
      } catch (error) {
        await node.stop().catch(() => undefined)
        throw error
      }
      const peer = new BrowserPeer(db, node, replication, init.name, trust)
      peer.listen()
      return peer
    } catch (error) {
      await db.close().catch(() => undefined)
      throw error
    }
  }

  /** Whether the peer is connecting to the mesh: the page has network and the app has not switched it off. */
  get online(): boolean {
    return this.networkUp && this.wanted
  }

  /**
   * The app's offline switch: off hangs up on every peer and stops dialling; the store keeps
   * taking writes, and on again they merge both ways through gossip and anti-entropy.
   */
  async setOnline(online: boolean): Promise<void> {
    this.wanted = online
    await this.apply()
  }

  private async apply(): Promise<void> {
    if (this.stopped) return
    await this.node.setOnline(this.online)
  }

  private listen(): void {
    const target = globalThis as { addEventListener?: (type: string, listener: (event: Event) => void) => void; navigator?: { onLine?: boolean } }
    if (target.navigator?.onLine === false) {
      this.networkUp = false
      void this.apply()
    }
    target.addEventListener?.('online', this.onNetwork)
    target.addEventListener?.('offline', this.onNetwork)
  }

  get gossip(): GossipReplicator {
    return this.replication.gossip
  }

  get sync(): SyncService {
    return this.replication.sync
  }

  get peerId(): string {
    return this.node.peerId.toString()
  }

  async status(): Promise<PeerStatus> {
    return { ...(await this.db.status()), name: this.name, ...this.replication.networkStatus(this.node), http: null }
  }

  counters(): PeerCounters {
    return this.replication.counters(this.node)
  }

  /** Stops replication and the node, then closes the store. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    const target = globalThis as { removeEventListener?: (type: string, listener: (event: Event) => void) => void }
    target.removeEventListener?.('online', this.onNetwork)
    target.removeEventListener?.('offline', this.onNetwork)
    await this.replication.stop()
    await this.node.stop()
    await this.db.close()
  }
}

function checkOptions(options: BrowserPeerOptions): { name: string; bootstrap: string[]; carries: Carries } {
  if (!isPlainObject(options as unknown)) throw new ValidationError('BrowserPeer.start needs { bootstrap: [multiaddr…] }')
  const name = options.name ?? 'shoal'
  if (typeof name !== 'string' || name === '' || name.length > 200) throw new ValidationError(`BrowserPeer.start: 'name' must be a non-empty string of at most 200 characters`)
  const { bootstrap } = options
  if (!Array.isArray(bootstrap) || !bootstrap.every((a) => typeof a === 'string')) {
    throw new ValidationError(`BrowserPeer.start: 'bootstrap' must be an array of multiaddrs, e.g. ['/ip4/192.168.1.10/tcp/4002/ws/p2p/12D3KooW…']`)
  }
  const carries = options.carries ?? {}
  if (!isPlainObject(carries as unknown) || !Object.values(carries).every((p) => Array.isArray(p) && p.every((v) => typeof v === 'string'))) {
    throw new ValidationError(`BrowserPeer.start: 'carries' must be an object of table → [partition values (strings)]`)
  }
  if (options.tables !== undefined && !Array.isArray(options.tables)) throw new ValidationError(`BrowserPeer.start: 'tables' must be an array of table schemas`)
  if (options.mesh !== undefined && typeof options.mesh !== 'string') throw new ValidationError(`BrowserPeer.start: 'mesh' must be a join code (the text after #join= in an admission link)`)
  // Before anything opens, like the other options.
  checkWebRtc(options.webrtc)
  return { name, bootstrap, carries }
}
