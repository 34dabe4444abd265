// libp2p v3 calls Promise.withResolvers, which Node 20 lacks: install the polyfill before it loads.
import '../polyfill.js'
import './websocket-polyfill.js'

import { join } from 'node:path'
import { autoNAT } from '@libp2p/autonat'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import type { Libp2p, PeerDiscovery } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'
import { DEFAULT_DISCOVERY_INTERVAL_MS, MDNS_SERVICE_TAG, PEER_BOOK_FILE } from './constants.js'
import { swarmKeySecret } from '../trust/swarm-key.js'
import { NetStartError } from './errors.js'
import { loadOrCreatePeerKey } from './identity.js'
import { meshDiscovery } from './mesh-discovery.js'
import { privateNetwork } from './private-network.js'
import { lanDiscovery } from './lan-discovery.js'
import { DEFAULT_REDIAL, DiscoveryReports, MeshKeeper, type RedialOptions } from './mesh-keeper.js'
import type { LivenessInit } from './liveness.js'
import { configureLibp2p, gaterFrom, OnlineSwitch, parseAddrs, shoalServices, ShoalNode, startShoalNode, type ShoalServices } from './shoal-node.js'

export { ShoalNode, type ShoalServices } from './shoal-node.js'

export interface NetInit {
  /** The peer's data folder; its private key lives here as 'peer.key' (mode 0600), known peers as 'peers.json'. */
  dataDir: string
  /** Multiaddrs to listen on, e.g. ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws']. Add '/p2p-circuit' to also be reachable through a relay. */
  listen: string[]
  /** Multiaddrs of peers to join through, each ending in /p2p/<peer id>. */
  bootstrap?: string[]
  /** Discover peers on the LAN by mDNS (default true). Tests pass false. */
  mdns?: boolean
  /** Run a circuit relay v2 server, so NATed peers can reserve a slot here (default false). */
  relay?: boolean
  /** How often this peer announces itself to the mesh on the discovery topic (default 60 s). */
  discoveryIntervalMs?: number
  /** Redial backoff for known peers (defaults: 1 s doubling to 60 s, forget after 7 days). */
  redial?: Partial<RedialOptions>
  /** How often connections are probed for a far end gone silent, and the shortest wait for an answer (defaults: 30 s, 5 s). */
  liveness?: LivenessInit
  /**
   * 'default': TCP, WebSockets and circuit relay. 'memory': the in-process @libp2p/memory
   * transport only (the real-stack simulator's peers): listen on '/memory/<unique name>'; no mDNS;
   * the bootstrap addresses are dialled directly once started (libp2p's bootstrap module silently
   * drops /memory/ addresses), and a failed first dial is not retried.
   */
  transports?: 'default' | 'memory'
  /**
   * Connection gater: return false to refuse dialling a peer and accepting its connections (the
   * simulator enforces partitions with it). Open connections are not closed: hang up on them.
   */
  gater?: (remotePeerId: string) => boolean
  /** With `relay`: whether a peer may reserve a slot or have a connection relayed here (a private mesh: admitted peers only). */
  relayUser?: (remotePeerId: string) => Promise<boolean>
  /**
   * The mesh secret (a libp2p swarm key file's bytes, `/key/swarm/psk/1.0.0/` …): every
   * connection is then encrypted with it underneath Noise, so a node without it cannot complete a
   * connection, and learns nothing, not even which protocols are spoken. Without it: an open mesh.
   *
   * WebSocket connections are the exception (shoal-node.ts isOpenTransport): browser
   * peers join over them, kept out by admission alone.
   */
  swarmKey?: Uint8Array
  /**
   * Whether gossipsub signs every message with its publisher's key and refuses unsigned ones
   * (StrictSign, the default), or sends them without publisher, sequence number and signature
   * (StrictNoSign, ~110 bytes less on every hop). A private mesh turns it off: its changesets
   * carry their author's own signature, and its peers are admitted before any gossip.
   * Discovery announcements are signed by their peer either way (mesh-discovery.ts).
   */
  signedGossip?: boolean
}

/** Build, start and return this peer's libp2p node. */
export async function createNode(init: NetInit): Promise<ShoalNode> {
  if (typeof init.dataDir !== 'string' || init.dataDir === '') throw new NetStartError('createNode needs { dataDir }')
  if (!Array.isArray(init.listen)) throw new NetStartError('createNode needs { listen: [multiaddr…] } (may be empty)')
  parseAddrs('listen', init.listen, false)
  const bootstrapList = init.bootstrap ?? []
  parseAddrs('bootstrap', bootstrapList, true)

  const privateKey = await loadOrCreatePeerKey(init.dataDir)
  let connectionProtector: Libp2pOptions['connectionProtector']
  if (init.swarmKey !== undefined) {
    let secret: Uint8Array
    try {
      secret = swarmKeySecret(init.swarmKey, 'given to createNode')
    } catch (error) {
      throw new NetStartError(`the mesh secret is not valid: ${(error as Error).message}`, { cause: error })
    }
    connectionProtector = privateNetwork(secret)
  }

  const reports = new DiscoveryReports()
  const peerDiscovery: Array<NonNullable<Libp2pOptions['peerDiscovery']>[number]> = [
    // Peers learn of further peers from the ones they meet (see mesh-discovery.ts).
    // cast: it needs the `pubsub` service as a component, which libp2p provides by service name
    // at run time but its Components type does not declare
    reports.tap(meshDiscovery({ interval: init.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS }) as unknown as (components: unknown) => PeerDiscovery),
  ]
  const inMemory = init.transports === 'memory'
  // cast: as for meshDiscovery, its components are provided at run time
  if (init.mdns !== false && !inMemory) peerDiscovery.push(reports.tap(lanDiscovery({ serviceTag: MDNS_SERVICE_TAG }) as unknown as (components: unknown) => PeerDiscovery))
  if (bootstrapList.length > 0 && !inMemory) peerDiscovery.push(reports.tap(bootstrap({ list: bootstrapList })))

  const services: ServiceFactoryMap<ShoalServices> = { ...shoalServices(init.signedGossip !== false, init.liveness), dcutr: dcutr(), autonat: autoNAT() }
  if (init.relay === true) services.relay = circuitRelayServer()

  const online = new OnlineSwitch()
  const node = await configureLibp2p({
    privateKey,
    addresses: { listen: init.listen },
    transports: inMemory ? [memory()] : [tcp(), webSockets(), circuitRelayTransport()],
    ...(connectionProtector === undefined ? {} : { connectionProtector }),
    peerDiscovery,
    services,
    connectionGater: gaterFrom(online, init.gater, init.relayUser),
  })

  const keeper = new MeshKeeper(
    node as unknown as Libp2p,
    { ...DEFAULT_REDIAL, ...init.redial },
    join(init.dataDir, PEER_BOOK_FILE),
    Math.random,
    reports,
  )
  await startShoalNode(node, keeper, bootstrapList, `listen ${JSON.stringify(init.listen)}`, '; check that the ports are free and the addresses belong to this machine')
  return new ShoalNode(node, keeper, online, connectionProtector !== undefined)
}

