import { resolve } from 'node:path'
import { SqlBridge } from '../bridge/bridge.js'
import { parseBridgeConfig } from '../bridge/config.js'
import { parseHostPort, type PeerConfig } from '../config.js'
import { removeApiFile, writeApiFile } from '../http/api-file.js'
import type { HttpLimits } from '../http/constants.js'
import { startHttpApi, type HttpApi } from '../http/server.js'
import type { UiPeerInfo } from '../http/ui.js'
import { createApiToken } from '../http/token.js'
import type { Logger } from '../log.js'
import { createLogger } from '../log-pino.js'
import { createNode, type NetInit, type ShoalNode } from '../net/node.js'
import { PeerStartingError, StoreOpenError } from '../errors.js'
import { Shoal } from '../shoal.js'
import type { PeerCounters, PeerStatus } from '../status.js'
import type { MeshMaterial } from '../trust/material.js'
import type { GossipReplicator } from './gossip-replicator.js'
import { PeerTrust } from './trust.js'
import { resolveMesh } from './mesh-folder.js'
import type { Refusals } from './refusals.js'
import { Replication, type GossipOptions, type SyncOptions } from './replication.js'
import type { SyncService } from './sync-service.js'

/** Written into the data folder while the peer runs (with the API's URL and token, mode 0600), so `shoal get/put/…` can use its HTTP API. */
export { API_FILE } from '../http/api-file.js'

export interface PeerOptions {
  /** Where the peer's components log (default: a pino logger on stderr, named after the peer). */
  logger?: Logger
  /** Network knobs beyond the config (tests shorten discovery and redial). */
  net?: Partial<Pick<NetInit, 'discoveryIntervalMs' | 'redial' | 'relay' | 'transports' | 'gater'>>
  /** Anti-entropy knobs (round interval, page sizes). */
  sync?: SyncOptions
  /** Gossip knobs (coalescing window, per-origin rates, topic cap). */
  gossip?: GossipOptions
  /** HTTP API timeouts and connection cap (defaults: DEFAULT_HTTP_LIMITS). */
  httpLimits?: Partial<HttpLimits>
  /** Where the built web app is (config "ui"; default: dist/browser of this package). */
  uiDir?: string
  /** The private mesh this peer runs in (null: an open mesh). Default: what the config's `mesh` / `open` resolve to (mesh-folder.ts). */
  trust?: MeshMaterial | null
}

/**
 * A running Shoal peer: the store, the libp2p node, gossip (fast path), anti-entropy (repair
 * path) and the local HTTP API, started and stopped together. This is what `shoal start` runs.
 */
export class Peer {
  private stopped = false

  private constructor(
    readonly config: PeerConfig,
    readonly db: Shoal,
    readonly node: ShoalNode,
    private readonly replication: Replication,
    readonly http: HttpApi | null,
    /** The SQL bridge (config `bridge`), or null. */
    readonly bridge: SqlBridge | null = null,
    /** This peer's trust in its private mesh, or null in an open mesh. */
    readonly trust: PeerTrust | null = null,
  ) {}

  get gossip(): GossipReplicator {
    return this.replication.gossip
  }

  get sync(): SyncService {
    return this.replication.sync
  }

  /** What peers sent that was refused, by reason (gossip and anti-entropy). */
  get refusals(): Refusals {
    return this.replication.refusals
  }

  static async start(config: PeerConfig, options: PeerOptions = {}): Promise<Peer> {
    const dir = resolve(config.data)
    const logger = options.logger ?? createLogger(config.name === null ? {} : { bindings: { peer: config.name } })
    const material = options.trust !== undefined ? options.trust : await resolveMesh(config, dir, logger.child({ component: 'mesh' }))
    const trust = material === null ? null : await PeerTrust.load(material, dir)
    const db = await Shoal.open({
      dir,
      logger: logger.child({ component: 'store' }),
      // In a private mesh the store's actor is the peer id: its changes are signed by that key.
      ...(trust === null ? {} : { actor: trust.self, signer: trust.signer, guard: trust.guard }),
    }).catch((error: unknown) => {
      if (trust !== null && error instanceof StoreOpenError && /belongs to replica/.test(error.message)) {
        throw new StoreOpenError(
          `${error.message}. This data folder was written by a peer outside the private mesh; in a private mesh every change is signed by the peer id, so start this peer on a new data folder (its rows come back from the mesh)`,
          { cause: error },
        )
      }
      throw error
    })
    const undo: Array<() => Promise<void>> = [() => db.close()]
    const unwind = async (): Promise<void> => {
      for (const step of undo.reverse()) await step().catch(() => undefined)
    }
    try {
      if (trust === null || trust.mayDefineTables()) {
        for (const schema of config.tables) await db.defineTable(schema)
      } else if (config.tables.length > 0) {
        logger.info(`this peer's group may not define tables: ${config.tables.map((t) => t.name).join(', ')} will arrive from the mesh`)
      }
      const replication = new Replication(trust, logger)
      const gater = replication.gater(options.net?.gater)
      const relayUser = replication.relayUser()
      const node = await createNode({
        dataDir: dir,
        listen: config.listen,
        bootstrap: config.bootstrap,
        mdns: config.mdns,
        relay: config.relay,
        // A private mesh's changesets carry their author's signature: gossipsub's is left off.
        ...(material === null ? {} : { swarmKey: material.swarmKey, signedGossip: false }),
        ...options.net,
        ...(gater === undefined ? {} : { gater }),
        ...(relayUser === undefined ? {} : { relayUser }),
      })
      undo.push(() => node.stop())
      await replication.start(db, node, { carries: config.carries, deflate: config.deflate, ...(options.sync === undefined ? {} : { sync: options.sync }), ...(options.gossip === undefined ? {} : { gossip: options.gossip }) })
      undo.push(() => replication.stop())
      let bridge: SqlBridge | null = null
      if (config.bridge != null) {
        const bridgeConfig = parseBridgeConfig(config.bridge, config.name === null ? 'config' : `config of '${config.name}'`)
        bridge = await SqlBridge.start({ db, config: bridgeConfig, logger: logger.child({ component: 'sql-bridge' }) })
        undo.push(() => bridge!.stop())
      }
      let peer: Peer | null = null
      const started = (): Peer => {
        if (peer === null) throw new PeerStartingError()
        return peer
      }
      let http: HttpApi | null = null
      if (config.http !== null) {
        const { host, port } = parseHostPort('--http', config.http)
        // A new token at every start: one read from an old api.json is worth nothing afterwards.
        const token = createApiToken()
        http = await startHttpApi({
          host,
          port,
          db,
          logger: logger.child({ component: 'http' }),
          token,
          hosts: config.httpHosts,
          origins: config.httpOrigins,
          metricsPublic: config.metricsPublic,
          ...(options.httpLimits === undefined ? {} : { limits: options.httpLimits }),
          // The API listens before this start has finished: until then it answers 503 STARTING.
          status: () => started().status(),
          counters: () => started().counters(),
          bridge: () => peer?.bridge?.status() ?? null,
          ...(trust === null ? {} : { meshDocuments: (docs: Uint8Array[]) => trust.addDocuments(docs) }),
          ...(config.ui ? { ui: { info: () => uiPeerInfo(node, db, trust), ...(options.uiDir === undefined ? {} : { dir: options.uiDir }) } } : {}),
        })
        undo.push(() => http!.close())
        await writeApiFile(dir, { url: http.url, pid: process.pid, token })
        undo.push(() => removeApiFile(dir))
      }
      peer = new Peer(config, db, node, replication, http, bridge, trust)
      return peer
    } catch (error) {
      await unwind()
      throw error
    }
  }

  async status(): Promise<PeerStatus> {
    return {
      ...(await this.db.status()),
      name: this.config.name,
      ...this.replication.networkStatus(this.node),
      http: this.http?.url ?? null,
      bridge: this.bridge?.status() ?? null,
    }
  }

  counters(): PeerCounters {
    return this.replication.counters(this.node)
  }

  /** Stops the API, replication and the node, then closes the store. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.http !== null) {
      await this.http.close()
      await removeApiFile(resolve(this.config.data))
    }
    await this.replication.stop()
    await this.node.stop()
    await this.bridge?.stop()
    await this.db.close()
  }
}

/** What the web app needs to reach this peer: its id, its WebSocket ports, its tables partitioned by store. */
function uiPeerInfo(node: ShoalNode, db: Shoal, trust: PeerTrust | null): UiPeerInfo {
  const webSockets = new Map<number, boolean>()
  for (const addr of node.multiaddrs()) {
    const parts = addr.getComponents()
    const port = parts.find((c) => c.name === 'tcp')?.value
    const ws = parts.find((c) => c.name === 'ws' || c.name === 'wss')
    if (port === undefined || ws === undefined || parts.some((c) => c.name === 'p2p-circuit')) continue
    webSockets.set(Number(port), ws.name === 'wss' || parts.some((c) => c.name === 'tls'))
  }
  return {
    peerId: node.peerId.toString(),
    mesh: trust?.mesh ?? null,
    webSockets: [...webSockets].map(([port, secure]) => ({ port, secure })),
    storeTables: db
      .tables()
      .filter((t) => t.partitionBy === 'store')
      .map((t) => t.name),
  }
}

