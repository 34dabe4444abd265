import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { noise } from '@chainsafe/libp2p-noise'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, identifyPush, type Identify, type IdentifyPush } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping, type Ping } from '@libp2p/ping'
import { yamux } from '@libp2p/yamux'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions, type ServiceFactoryMap } from 'libp2p'
import { coalescing } from './coalescing-encrypter.js'
import { GOSSIPSUB_BYTES_PER_TOPIC, MAX_GOSSIP_MESSAGE_BYTES, MAX_GOSSIP_TOPICS } from './constants.js'
import { NetStartError } from './errors.js'
import { liveness, type Liveness, type LivenessInit } from './liveness.js'
import type { MeshKeeper } from './mesh-keeper.js'

/*
 * What every Shoal libp2p node has, whatever it runs in: the services, the connection's
 * encryption and multiplexing, and ShoalNode, the handle the replication layer gets. node.ts
 * builds a Node peer's node (TCP, WebSockets listeners, mDNS), browser-node.ts a browser tab's.
 */

/** The libp2p services a Shoal peer runs; `relay` only when NetInit.relay is true. */
export interface ShoalServices extends Record<string, unknown> {
  identify: Identify
  identifyPush: IdentifyPush
  ping: Ping
  pubsub: GossipSub
  /** Finds connections gone silent and aborts them (net/liveness.ts; in place of libp2p's connection monitor). */
  liveness: Liveness
  /** Node peers only: hole punching and reachability checks mean nothing to a browser tab. */
  dcutr?: unknown
  autonat?: unknown
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
    private readonly online: OnlineSwitch,
    /** Whether this node's connections are encrypted with a mesh secret (a Node peer of a private mesh; never a browser tab). */
    private readonly hasSecret = false,
  ) {}

  /**
   * Whether the mesh secret protects this connection, so that only a peer holding the secret
   * could have opened it. Never on a browser tab (a page cannot be given the secret), nor over
   * WebSockets or WebRTC (isOpenTransport): there strangers can connect, and admission alone
   * keeps them out.
   */
  secretProtects(connection: { remoteAddr: Multiaddr }): boolean {
    return this.hasSecret && !isOpenTransport(connection.remoteAddr)
  }

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

  /**
   * Offline: hang up on every peer and stop redialling (a browser tab whose network went away,
   * or an app's offline switch); online again: redial every known peer at once, not after the
   * backoff its failed dials have grown to. Writes go on either way: they wait in the store.
   */
  async setOnline(online: boolean): Promise<void> {
    if (this.stopped) return
    this.online.on = online
    if (online) {
      this.keeper.resume()
      return
    }
    this.keeper.pause()
    // Aborted, not closed: a graceful close waits for every stream's far end, which an offline
    // link never answers.
    for (const c of this.libp2p.getConnections()) c.abort(new Error('offline'))
  }

  /** Close all connections and listeners. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.keeper.stop()
    await this.libp2p.stop()
  }
}

/** The services of every Shoal node; Node peers add dcutr, autonat and (when asked) a relay server. */
export function shoalServices(signedGossip: boolean, livenessInit?: LivenessInit): ServiceFactoryMap<ShoalServices> {
  return {
    identify: identify(),
    identifyPush: identifyPush(),
    ping: ping(),
    liveness: liveness(livenessInit),
    pubsub: gossipsub({
      globalSignaturePolicy: signedGossip ? 'StrictSign' : 'StrictNoSign',
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
      // No lazy gossip (IHAVE of recent messages to peers outside the mesh, who then ask for
      // them): a writer floods its own messages to every subscriber, and what a peer missed,
      // anti-entropy brings. With it a peer reconnecting after a burst of writes was sent the
      // whole burst again as gossip (1.7 MB for 10k updates) on top of the round that repairs it.
      mcacheGossip: 0,
    }),
  }
}

/**
 * A configured, not yet started libp2p node: encryption, multiplexing and liveness the same on
 * every transport; `options` add the key, addresses, transports, discovery, services and gater.
 */
export async function configureLibp2p(options: Omit<Libp2pOptions<ShoalServices>, 'start' | 'connectionEncrypters' | 'streamMuxers' | 'connectionMonitor'>): Promise<Libp2p<ShoalServices>> {
  try {
    return await createLibp2p<ShoalServices>({ start: false, ...options, ...connectionOptions() })
  } catch (error) {
    throw new NetStartError(`cannot configure the libp2p node: ${(error as Error).message}`, { cause: error })
  }
}

/** Encryption, multiplexing and liveness, the same on every transport. */
function connectionOptions(): Pick<Libp2pOptions, 'connectionEncrypters' | 'streamMuxers' | 'connectionMonitor'> {
  return {
    connectionEncrypters: [coalescing(noise())],
    // yamux's keepalive pings every 30 s but never closes a connection that stops answering;
    // the liveness service pings with the same frame and does (shoalServices).
    streamMuxers: [yamux({ enableKeepAlive: false })],
    // libp2p's monitor opens a ping stream per probe (~450 B, both sides): the liveness service
    // replaces it with yamux's ping frame (~60 B a round trip).
    connectionMonitor: { enabled: false },
  }
}

/**
 * Starts a configured node and its redial loop, then dials the bootstrap peers at once: libp2p's
 * bootstrap discovery waits a second after start before it names them (it is still configured,
 * and tags them for the keeper), and that second was most of the time a peer took to join its mesh.
 */
export async function startShoalNode(node: Libp2p<ShoalServices>, keeper: MeshKeeper, bootstrap: readonly string[], describe: string, hint = ''): Promise<void> {
  try {
    await keeper.start()
    await node.start()
  } catch (error) {
    await keeper.stop().catch(() => undefined)
    await Promise.resolve()
      .then(() => node.stop())
      .catch(() => undefined)
    throw new NetStartError(`cannot start the libp2p node (${describe}): ${(error as Error).message}${hint}`, { cause: error })
  }
  keeper.redialAll()
  for (const a of bootstrap) {
    node.dial(multiaddr(a)).catch((error: unknown) => node.logger.forComponent('shoal:net').error('could not dial bootstrap peer %s - %e', a, error))
  }
}

/** sha256(from ‖ seqno ‖ topic ‖ data), 16 bytes hex: identifies a gossip message without verifying it. */
export function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array; topic: string; data?: Uint8Array }): string {
  const h = sha256.create()
  for (const part of [message.from, message.seqno, textEncoder.encode(message.topic), message.data]) {
    h.update(new Uint8Array([part?.length ?? 0, (part?.length ?? 0) >>> 8, (part?.length ?? 0) >>> 16]))
    if (part !== undefined) h.update(part)
  }
  return bytesToHex(h.digest().subarray(0, 16))
}

const textEncoder = new TextEncoder()

export function toDialTarget(target: string | Multiaddr | PeerId): Multiaddr | PeerId {
  if (typeof target !== 'string') return target
  return target.startsWith('/') ? multiaddr(target) : peerIdFromString(target)
}

/** Throws NetStartError naming the first address that is not a multiaddr (or lacks /p2p/<id> when needed). */
export function parseAddrs(what: string, addrs: readonly string[], needPeerId: boolean): void {
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

/**
 * Whether a connection runs over WebSockets (`…/ws`, `…/wss`, `…/tls/ws`, or a relay reached
 * over them). Those are left to Noise and the admission handshake: they are how browser peers
 * join, and a page cannot be given the mesh secret (every visitor could read it).
 */
export function isWebSocketAddress(addr: Multiaddr | undefined): boolean {
  return addr?.getComponents().some((c) => c.name === 'ws' || c.name === 'wss') ?? false
}

/**
 * Whether a connection runs over a transport the mesh secret cannot protect: WebSockets
 * (isWebSocketAddress) or WebRTC (browser to browser; it brings its own DTLS, and libp2p skips
 * the protector on it). Strangers can open such a connection, but nothing is served to a peer
 * before its admission is checked (peer/admission.ts), and on an inbound one the dialler must
 * present its admission first.
 */
export function isOpenTransport(addr: Multiaddr | undefined): boolean {
  return isWebSocketAddress(addr) || (addr?.getComponents().some((c) => c.name === 'webrtc' || c.name === 'webrtc-direct') ?? false)
}

/** Whether a node may connect at all: off while offline (ShoalNode.setOnline). */
export class OnlineSwitch {
  on = true
}

/**
 * The node's connection gater: nothing while offline (libp2p's own reconnect queue would
 * otherwise redial a bootstrap peer the moment we hang up), and no peer `allow` rejects.
 * Any multiaddr may be dialled (a browser's default refuses plain ws and private addresses).
 *
 * `relayUser`, on a node running a circuit relay: whether a peer may reserve a slot here or have
 * a connection relayed (in a private mesh: once its admission is checked, waiting for the
 * handshake in flight). A relay is how browser tabs meet for WebRTC, and without this a
 * stranger who reached it over WebSockets could be relayed to any member in its first seconds.
 */
export function gaterFrom(online: OnlineSwitch, allow?: (remotePeerId: string) => boolean, relayUser?: (remotePeerId: string) => Promise<boolean>): ConnectionGater {
  const deny = (peer: PeerId): boolean => !online.on || (allow !== undefined && !allow(peer.toString()))
  const offline = (): boolean => !online.on
  const denyRelay = async (peer: PeerId): Promise<boolean> => deny(peer) || (relayUser !== undefined && !(await relayUser(peer.toString())))
  return {
    denyDialMultiaddr: offline,
    denyInboundConnection: offline,
    denyDialPeer: deny,
    denyOutboundConnection: deny,
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
    denyInboundUpgradedConnection: deny,
    denyOutboundUpgradedConnection: deny,
    denyInboundRelayReservation: denyRelay,
    denyOutboundRelayedConnection: async (source, destination) => (await denyRelay(source)) || deny(destination),
    denyInboundRelayedConnection: (relay, remote) => deny(relay) || deny(remote),
  }
}
