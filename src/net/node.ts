// libp2p v3 calls Promise.withResolvers, which Node 20 lacks: install the polyfill before it loads.
import '../polyfill.js'
import './websocket-polyfill.js'

import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { noise } from '@chainsafe/libp2p-noise'
import { coalescing } from './coalescing-encrypter.js'
import { autoNAT } from '@libp2p/autonat'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, identifyPush, type Identify, type IdentifyPush } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PeerDiscovery, PeerId } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions, type ServiceFactoryMap } from 'libp2p'
import { CONNECTION_PING_INTERVAL_MS, DEFAULT_DISCOVERY_INTERVAL_MS, GOSSIPSUB_BYTES_PER_TOPIC, MAX_GOSSIP_MESSAGE_BYTES, MAX_GOSSIP_TOPICS, MDNS_SERVICE_TAG, PEER_BOOK_FILE } from './constants.js'
import { swarmKeySecret } from '../trust/swarm-key.js'
import { NetStartError } from './errors.js'
import { loadOrCreatePeerKey } from './identity.js'
import { meshDiscovery } from './mesh-discovery.js'
import { privateNetwork } from './private-network.js'
import { lanDiscovery } from './lan-discovery.js'
import { DEFAULT_REDIAL, MeshKeeper, type RedialOptions } from './mesh-keeper.js'

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
  /**
   * The mesh secret (a libp2p swarm key file's bytes, `/key/swarm/psk/1.0.0/` …): every
   * connection is then encrypted with it underneath Noise, so a node without it cannot complete a
   * connection, and learns nothing, not even which protocols are spoken. Without it: an open mesh.
   *
   * WebSockets are left out then (their listen addresses skipped, listed in
   * ShoalNode.notListening): with @libp2p/websockets 10.x a protected WebSocket dial never
   * finishes the key's nonce exchange (the dialler never receives the listener's nonce, which
   * the listener sends at once, apparently before the dialler's connection listens), so it hangs
   * until its timeout; TCP is unaffected.
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

/** The libp2p services every Shoal peer runs; `relay` only when NetInit.relay is true. */
export interface ShoalServices extends Record<string, unknown> {
  identify: Identify
  identifyPush: IdentifyPush
  ping: Ping
  pubsub: GossipSub
  dcutr: unknown
  autonat: unknown
  relay?: CircuitRelayService
}

/**
 * A started libp2p node with Shoal's configuration. `libp2p` is the node itself, for the
 * replication layer (protocol handlers, dialProtocol); the methods cover the common needs.
 */
export class ShoalNode {
  private stopped = false

  constructor(
    readonly libp2p: Libp2p<ShoalServices>,
    private readonly keeper: MeshKeeper,
    /** Listen addresses left out: WebSockets ones under a mesh secret (see NetInit.swarmKey). */
    readonly notListening: readonly string[] = [],
  ) {}

  get peerId(): PeerId {
    return this.libp2p.peerId
  }

  /** Gossipsub (StrictSign, or StrictNoSign with NetInit.signedGossip false). */
  get pubsub(): GossipSub {
    return this.libp2p.services.pubsub
  }

  /** The addresses this node listens on, each ending in /p2p/<peer id>, ready to give to another peer. */
  multiaddrs(): Multiaddr[] {
    return this.libp2p.getMultiaddrs()
  }

  /** Peers with at least one open connection. */
  connectedPeers(): PeerId[] {
    return this.libp2p.getPeers()
  }

  /** Peers this node keeps connections to, redialling them with backoff when they go away. */
  knownPeers(): PeerId[] {
    return this.keeper.knownPeers()
  }

  /** Connect to a peer by multiaddr (with /p2p/<id>) or by a peer id whose addresses are known. */
  async dial(target: string | Multiaddr | PeerId, options?: { signal?: AbortSignal }): Promise<void> {
    await this.libp2p.dial(toDialTarget(target), options)
  }

  /** Round-trip time to a peer in milliseconds (libp2p ping protocol). */
  ping(target: string | Multiaddr | PeerId, options?: { signal?: AbortSignal }): Promise<number> {
    return this.libp2p.services.ping.ping(toDialTarget(target), options)
  }

  /** Stop redialling a peer, close connections to it, and drop it from peers.json. */
  async forget(peer: PeerId): Promise<void> {
    this.keeper.forget(peer)
    await this.libp2p.hangUp(peer)
  }

  /** Close all connections and listeners. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.keeper.stop()
    await this.libp2p.stop()
  }
}

/** sha256(from ‖ seqno ‖ topic ‖ data), 16 bytes hex: identifies a gossip message without verifying it. */
function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array; topic: string; data?: Uint8Array }): string {
  const h = sha256.create()
  for (const part of [message.from, message.seqno, textEncoder.encode(message.topic), message.data]) {
    h.update(new Uint8Array([part?.length ?? 0, (part?.length ?? 0) >>> 8, (part?.length ?? 0) >>> 16]))
    if (part !== undefined) h.update(part)
  }
  return Buffer.from(h.digest().subarray(0, 16)).toString('hex')
}

const textEncoder = new TextEncoder()

function toDialTarget(target: string | Multiaddr | PeerId): Multiaddr | PeerId {
  if (typeof target !== 'string') return target
  return target.startsWith('/') ? multiaddr(target) : peerIdFromString(target)
}

function parseAddrs(what: string, addrs: readonly string[], needPeerId: boolean): void {
  for (const a of addrs) {
    let ma: Multiaddr
    try {
      ma = multiaddr(a)
    } catch (error) {
      throw new NetStartError(`${what} address '${a}' is not a valid multiaddr: ${(error as Error).message}`, { cause: error })
    }
    if (needPeerId && ma.getComponents().find((c) => c.name === 'p2p') === undefined) {
      throw new NetStartError(`${what} address '${a}' has no /p2p/<peer id> part; append the peer's id, e.g. ${a}/p2p/12D3KooW…`)
    }
  }
}

/** Build, start and return this peer's libp2p node. */
export async function createNode(init: NetInit): Promise<ShoalNode> {
  if (typeof init.dataDir !== 'string' || init.dataDir === '') throw new NetStartError('createNode needs { dataDir }')
  if (!Array.isArray(init.listen)) throw new NetStartError('createNode needs { listen: [multiaddr…] } (may be empty)')
  parseAddrs('listen', init.listen, false)
  const protectedMesh = init.swarmKey !== undefined
  const isWebSocket = (a: string): boolean => multiaddr(a).getComponents().some((c) => c.name === 'ws' || c.name === 'wss' || c.name === 'tls')
  const listen = protectedMesh ? init.listen.filter((a) => !isWebSocket(a)) : init.listen
  const notListening = init.listen.filter((a) => !listen.includes(a))
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

  const peerDiscovery: Array<NonNullable<Libp2pOptions['peerDiscovery']>[number]> = [
    // Peers learn of further peers from the ones they meet (see mesh-discovery.ts).
    // cast: it needs the `pubsub` service as a component, which libp2p provides by service name
    // at run time but its Components type does not declare
    meshDiscovery({ interval: init.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS }) as unknown as (components: unknown) => PeerDiscovery,
  ]
  const inMemory = init.transports === 'memory'
  // cast: as for meshDiscovery, its components are provided at run time
  if (init.mdns !== false && !inMemory) peerDiscovery.push(lanDiscovery({ serviceTag: MDNS_SERVICE_TAG }) as unknown as (components: unknown) => PeerDiscovery)
  if (bootstrapList.length > 0 && !inMemory) peerDiscovery.push(bootstrap({ list: bootstrapList }))

  const services: ServiceFactoryMap<ShoalServices> = {
    identify: identify(),
    identifyPush: identifyPush(),
    ping: ping(),
    pubsub: gossipsub({
      globalSignaturePolicy: init.signedGossip === false ? 'StrictNoSign' : 'StrictSign',
      // A lone peer writing locally must not get errors; anti-entropy repairs what it missed.
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      // Without it every duplicate copy of a message (one per mesh neighbour) has its Ed25519
      // signature verified before it is dropped as seen; hashing the fields that make a message
      // unique is far cheaper. Only messages that passed validation enter the cache, so a forged
      // copy cannot make a valid one look seen first.
      fastMsgIdFn: fastMessageId,
      // Messages larger than Shoal ever sends are dropped before they are decoded.
      maxInboundDataLength: MAX_GOSSIP_MESSAGE_BYTES,
      // Gossipsub's default per-peer topic budget (1 MiB ≈ 1,000 topics) would silently stop
      // delivering for a peer carrying more partitions than that; it is sized to Shoal's own cap.
      maxTopicBytesPerPeer: MAX_GOSSIP_TOPICS * GOSSIPSUB_BYTES_PER_TOPIC,
    }),
    dcutr: dcutr(),
    autonat: autoNAT(),
  }
  if (init.relay === true) services.relay = circuitRelayServer()

  let node: Libp2p<ShoalServices>
  try {
    node = await createLibp2p<ShoalServices>({
      start: false,
      privateKey,
      addresses: { listen },
      transports: inMemory ? [memory()] : protectedMesh ? [tcp(), circuitRelayTransport()] : [tcp(), webSockets(), circuitRelayTransport()],
      connectionEncrypters: [coalescing(noise())],
      ...(connectionProtector === undefined ? {} : { connectionProtector }),
      streamMuxers: [yamux()],
      // libp2p pings every peer every 10 s (~1 KB a time for a pair): most of what two idle
      // peers send. 30 s still finds a dead connection well before anti-entropy would miss it.
      connectionMonitor: { pingInterval: CONNECTION_PING_INTERVAL_MS },
      peerDiscovery,
      services,
      ...(init.gater === undefined ? {} : { connectionGater: gaterFrom(init.gater) }),
    })
  } catch (error) {
    throw new NetStartError(`cannot configure the libp2p node: ${(error as Error).message}`, { cause: error })
  }

  const keeper = new MeshKeeper(
    node as unknown as Libp2p,
    { ...DEFAULT_REDIAL, ...init.redial },
    join(init.dataDir, PEER_BOOK_FILE),
  )
  try {
    await keeper.start()
    await node.start()
  } catch (error) {
    await keeper.stop().catch(() => undefined)
    await Promise.resolve()
      .then(() => node.stop())
      .catch(() => undefined)
    throw new NetStartError(
      `cannot start the libp2p node (listen ${JSON.stringify(init.listen)}): ${(error as Error).message}; ` +
        `check that the ports are free and the addresses belong to this machine`,
      { cause: error },
    )
  }
  keeper.redialAll()
  // Dialled at once: libp2p's bootstrap discovery waits a second after start before it names
  // them (it is still configured, and tags them for the keeper), and that second was most of the
  // time a peer took to join its mesh.
  for (const a of bootstrapList) {
    node.dial(multiaddr(a)).catch((error: unknown) => node.logger.forComponent('shoal:net').error('could not dial bootstrap peer %s - %e', a, error))
  }
  return new ShoalNode(node, keeper, notListening)
}

/** A libp2p connection gater refusing dials to, and connections from, peers `allow` rejects. */
function gaterFrom(allow: (remotePeerId: string) => boolean): ConnectionGater {
  const deny = (peer: PeerId): boolean => !allow(peer.toString())
  return {
    denyDialPeer: deny,
    denyOutboundConnection: deny,
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
    denyInboundUpgradedConnection: deny,
    denyOutboundUpgradedConnection: deny,
  }
}
