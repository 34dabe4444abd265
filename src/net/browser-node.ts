import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { Libp2p, PeerDiscovery } from '@libp2p/interface'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import type { Libp2pOptions } from 'libp2p'
import { DEFAULT_DISCOVERY_INTERVAL_MS, PEER_BOOK_FILE } from './constants.js'
import { NetStartError } from './errors.js'
import { loadOrCreatePeerKey } from './identity.js'
import { meshDiscovery } from './mesh-discovery.js'
import { DEFAULT_REDIAL, DiscoveryReports, MeshKeeper, type RedialOptions } from './mesh-keeper.js'
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
  /** Direct connections to other tabs (see BrowserPeerOptions.webrtc); false: none. */
  webrtc?: WebRtcOptions | false
}

export interface WebRtcOptions {
  /**
   * STUN/TURN servers for reaching tabs on other networks. Default none: tabs on the same
   * network (a store's tills and tablets) connect by their local addresses, and no third
   * party learns who talks to whom. libp2p's own default would send every tab's address to
   * four public STUN services.
   */
  iceServers?: RTCIceServer[]
  /** 'relay': connect only through the TURN servers in `iceServers`, never revealing the device's own addresses to the other tab. Default 'all'. */
  iceTransportPolicy?: RTCIceTransportPolicy
}

/**
 * A browser tab's libp2p node: it dials Node peers over WebSockets (a tab cannot listen) and
 * other tabs over WebRTC: each tab reserves a slot on the circuit relays among its peers, and
 * a tab dialling another's `…/p2p-circuit/webrtc/p2p/<id>` address exchanges the WebRTC offer
 * and answer through the relay, then the two talk over their own WebRTC connection. Unlike
 * libp2p's browser default, plain `ws` and private addresses may be dialled (gaterFrom): a
 * store's peers are on its LAN, and the page came from one of them.
 */
export async function createBrowserNode(init: BrowserNetInit): Promise<ShoalNode> {
  if (typeof init.dataDir !== 'string' || init.dataDir === '') throw new NetStartError('createBrowserNode needs { dataDir }')
  if (!Array.isArray(init.bootstrap)) throw new NetStartError('createBrowserNode needs { bootstrap: [multiaddr…] } (may be empty)')
  parseAddrs('bootstrap', init.bootstrap, true)
  checkWebRtc(init.webrtc)
  const privateKey = await loadOrCreatePeerKey(init.dataDir)
  const reports = new DiscoveryReports()
  const peerDiscovery: Array<NonNullable<Libp2pOptions['peerDiscovery']>[number]> = [
    // cast: it needs the `pubsub` service as a component, provided by service name at run time
    reports.tap(meshDiscovery({ interval: init.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS }) as unknown as (components: unknown) => PeerDiscovery),
  ]
  if (init.bootstrap.length > 0) peerDiscovery.push(reports.tap(bootstrap({ list: init.bootstrap })))
  const online = new OnlineSwitch()
  const webrtc = init.webrtc === false ? null : init.webrtc ?? {}
  const node = await configureLibp2p({
    privateKey,
    addresses: {
      listen: webrtc === null ? ['/p2p-circuit'] : ['/p2p-circuit', '/webrtc'],
      // Only the WebRTC addresses are worth announcing: a plain relayed connection is limited
      // (by time and bytes) and carries no replication, and Node peers reach tabs the other way.
      announceFilter: (addrs) => addrs.filter((a) => a.getComponents().some((c) => c.name === 'webrtc')),
    },
    transports: [webSockets(), circuitRelayTransport(), ...(webrtc === null ? [] : [webRTC({ rtcConfiguration: { iceServers: webrtc.iceServers ?? [], iceTransportPolicy: webrtc.iceTransportPolicy ?? 'all' } })])],
    peerDiscovery,
    services: shoalServices(init.signedGossip !== false),
    connectionGater: gaterFrom(online, init.gater),
  })
  const keeper = new MeshKeeper(node as unknown as Libp2p, { ...DEFAULT_REDIAL, ...init.redial }, `${init.dataDir}/${PEER_BOOK_FILE}`, Math.random, reports)
  await startShoalNode(node, keeper, init.bootstrap, `bootstrap ${JSON.stringify(init.bootstrap)}`)
  return new ShoalNode(node, keeper, online)
}

/** Throws NetStartError saying what is wrong with a `webrtc` option. */
export function checkWebRtc(webrtc: unknown): void {
  if (webrtc === undefined || webrtc === false) return
  const shape = `'webrtc' must be false or { iceServers?: [{ urls: 'stun:…' | 'turn:…', username?, credential? }, …], iceTransportPolicy?: 'all' | 'relay' }`
  if (typeof webrtc !== 'object' || webrtc === null || Array.isArray(webrtc)) throw new NetStartError(shape)
  const { iceServers, iceTransportPolicy, ...rest } = webrtc as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) throw new NetStartError(`${shape}; '${unknown[0]}' is not an option`)
  if (iceServers !== undefined && (!Array.isArray(iceServers) || !iceServers.every((s) => typeof s === 'object' && s !== null && (typeof (s as { urls?: unknown }).urls === 'string' || Array.isArray((s as { urls?: unknown }).urls))))) {
    throw new NetStartError(`${shape}: 'iceServers' must be a list of { urls }`)
  }
  if (iceTransportPolicy !== undefined && iceTransportPolicy !== 'all' && iceTransportPolicy !== 'relay') throw new NetStartError(`${shape}: 'iceTransportPolicy' is ${JSON.stringify(iceTransportPolicy)}`)
  if (iceTransportPolicy === 'relay' && (iceServers === undefined || (iceServers as unknown[]).length === 0)) {
    throw new NetStartError(`'webrtc.iceTransportPolicy' 'relay' needs a TURN server in 'webrtc.iceServers' (with none, tabs could never connect)`)
  }
}
