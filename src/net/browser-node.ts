import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { Libp2p, PeerDiscovery } from '@libp2p/interface'
import { webSockets } from '@libp2p/websockets'
import type { Libp2pOptions } from 'libp2p'
import { DEFAULT_DISCOVERY_INTERVAL_MS, PEER_BOOK_FILE } from './constants.js'
import { NetStartError } from './errors.js'
import { loadOrCreatePeerKey } from './identity.js'
import { meshDiscovery } from './mesh-discovery.js'
import { DEFAULT_REDIAL, MeshKeeper, type RedialOptions } from './mesh-keeper.js'
import { configureLibp2p, gaterFrom, OnlineSwitch, parseAddrs, shoalServices, ShoalNode, startShoalNode } from './shoal-node.js'

export interface BrowserNetInit {
  /** The data folder's name: the peer key and peer book live in IndexedDB beside the store. */
  dataDir: string
  /** Multiaddrs of Node peers listening on WebSockets (`…/tcp/<port>/ws/p2p/<id>`, or `/tls/ws`/`/wss` behind TLS). */
  bootstrap: string[]
  /** How often this peer announces itself to the mesh on the discovery topic (default 60 s). */
  discoveryIntervalMs?: number
  /** Redial backoff for known peers. */
  redial?: Partial<RedialOptions>
  /** As NetInit.signedGossip (a private mesh turns it off). */
  signedGossip?: boolean
  /** Refuse dialling and accepting peers for which it returns false (admission). */
  gater?: (remotePeerId: string) => boolean
}

/**
 * A browser tab's libp2p node: it dials out over WebSockets (a tab cannot listen) and is
 * reachable through a circuit relay. Unlike libp2p's browser default, plain `ws` and private
 * addresses may be dialled (gaterFrom): a store's peers are on its LAN, and the page came from one of them.
 */
export async function createBrowserNode(init: BrowserNetInit): Promise<ShoalNode> {
  if (typeof init.dataDir !== 'string' || init.dataDir === '') throw new NetStartError('createBrowserNode needs { dataDir }')
  if (!Array.isArray(init.bootstrap)) throw new NetStartError('createBrowserNode needs { bootstrap: [multiaddr…] } (may be empty)')
  parseAddrs('bootstrap', init.bootstrap, true)
  const privateKey = await loadOrCreatePeerKey(init.dataDir)
  const peerDiscovery: Array<NonNullable<Libp2pOptions['peerDiscovery']>[number]> = [
    // cast: it needs the `pubsub` service as a component, provided by service name at run time
    meshDiscovery({ interval: init.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS }) as unknown as (components: unknown) => PeerDiscovery,
  ]
  if (init.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: init.bootstrap }))
  const online = new OnlineSwitch()
  const node = await configureLibp2p({
    privateKey,
    addresses: { listen: ['/p2p-circuit'] },
    transports: [webSockets(), circuitRelayTransport()],
    peerDiscovery,
    services: shoalServices(init.signedGossip !== false),
    connectionGater: gaterFrom(online, init.gater),
  })
  const keeper = new MeshKeeper(node as unknown as Libp2p, { ...DEFAULT_REDIAL, ...init.redial }, `${init.dataDir}/${PEER_BOOK_FILE}`)
  await startShoalNode(node, keeper, init.bootstrap, `bootstrap ${JSON.stringify(init.bootstrap)}`)
  return new ShoalNode(node, keeper, online)
}
