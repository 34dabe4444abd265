import type { GossipSub, Message } from '@libp2p/gossipsub'
import { peerDiscoverySymbol, type ComponentLogger, type Logger, type PeerDiscovery, type PeerId, type PeerInfo, type Startable } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { decode, encode } from 'cborg'
import { DEFAULT_DISCOVERY_INTERVAL_MS, DISCOVERY_TOPIC, MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCED_ADDR_BYTES } from './constants.js'

/*
 * Peers learn of further peers from the ones they meet: each peer announces its own addresses on
 * a gossipsub topic, and gossipsub carries the announcement across the mesh.
 *
 * Why not @libp2p/pubsub-peer-discovery: it takes the announced peer's identity from the
 * message's payload (a public key anyone can copy) and all of its addresses, so any peer could
 * make every other peer dial addresses of its choosing in another peer's name, and keep them
 * redialling. Here an announcement is only ever about its sender: it must be a signed gossipsub
 * message (StrictSign), the peer it describes is the signer, its addresses are at most
 * MAX_ANNOUNCED_ADDRS valid multiaddrs that name no other peer, and one peer's announcements are
 * taken at most once per half interval.
 */

const VERSION = 1
/** After a neighbour subscribes, announce this soon (its mesh forms meanwhile)… */
const ANNOUNCE_SOON_MS = 500
/** …but not more often than this. */
const ANNOUNCE_AGAIN_MS = 5_000

export interface MeshDiscoveryInit {
  /** How often this peer announces itself (default DEFAULT_DISCOVERY_INTERVAL_MS). */
  interval?: number
}

interface Components {
  peerId: PeerId
  pubsub: GossipSub
  addressManager: { getAddresses(): Multiaddr[] }
  logger: ComponentLogger
}

export function encodeAnnouncement(addrs: readonly Multiaddr[]): Uint8Array {
  return encode([VERSION, 'peer', addrs.slice(0, MAX_ANNOUNCED_ADDRS).map((a) => a.bytes)])
}

/** The addresses an announcement from `from` gives for itself; null if it is not a valid announcement. */
export function decodeAnnouncement(data: Uint8Array, from: PeerId): Multiaddr[] | null {
  let value: unknown
  try {
    value = decode(data)
  } catch {
    return null
  }
  if (!Array.isArray(value) || value.length !== 3 || value[0] !== VERSION || value[1] !== 'peer' || !Array.isArray(value[2])) return null
  const raw = value[2] as unknown[]
  if (raw.length > MAX_ANNOUNCED_ADDRS) return null
  const out: Multiaddr[] = []
  for (const bytes of raw) {
    if (!(bytes instanceof Uint8Array) || bytes.length > MAX_ANNOUNCED_ADDR_BYTES) return null
    let addr: Multiaddr
    try {
      addr = multiaddr(bytes)
    } catch {
      return null
    }
    const named = addr.getComponents().filter((c) => c.name === 'p2p')
    // A relayed address names the relay first and the sender last; any other peer id is refused.
    if (named.length > 0 && named[named.length - 1]!.value !== from.toString()) return null
    out.push(addr)
  }
  return out
}

class MeshDiscovery extends EventTarget implements Startable {
  readonly [peerDiscoverySymbol] = this as unknown as PeerDiscovery
  readonly [Symbol.toStringTag] = '@shoal/mesh-discovery'
  private readonly interval: number
  private readonly log: Logger
  private timer: ReturnType<typeof setInterval> | undefined
  private soon: ReturnType<typeof setTimeout> | undefined
  private lastAnnounced = 0
  /** When each peer's announcement was last taken. */
  private readonly lastTaken = new Map<string, number>()

  constructor(
    private readonly components: Components,
    init: MeshDiscoveryInit,
  ) {
    super()
    this.interval = init.interval ?? DEFAULT_DISCOVERY_INTERVAL_MS
    this.log = components.logger.forComponent('shoal:net:discovery')
  }

  start(): void {}

  afterStart(): void {
    const pubsub = this.components.pubsub
    pubsub.subscribe(DISCOVERY_TOPIC)
    pubsub.addEventListener('message', this.onMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.announce()
    this.timer = setInterval(() => this.announce(), this.interval)
  }

  beforeStop(): void {
    clearInterval(this.timer)
    clearTimeout(this.soon)
    this.timer = undefined
    this.components.pubsub.removeEventListener('message', this.onMessage)
    this.components.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.components.pubsub.unsubscribe(DISCOVERY_TOPIC)
  }

  stop(): void {}

  /**
   * A neighbour joining the topic hears of this peer soon rather than at the next interval (once
   * per ANNOUNCE_AGAIN_MS at most, however many join), so a new peer meets the mesh in seconds
   * while an idle mesh announces once a minute.
   */
  private readonly onSubscriptionChange = (event: CustomEvent<{ subscriptions: Array<{ topic: string; subscribe: boolean }> }>): void => {
    if (!event.detail.subscriptions.some((s) => s.topic === DISCOVERY_TOPIC && s.subscribe) || this.soon !== undefined || this.timer === undefined) return
    const wait = Math.max(ANNOUNCE_SOON_MS, this.lastAnnounced + ANNOUNCE_AGAIN_MS - Date.now())
    this.soon = setTimeout(() => {
      this.soon = undefined
      this.announce()
    }, wait)
  }

  private announce(): void {
    const pubsub = this.components.pubsub
    if (pubsub.getSubscribers(DISCOVERY_TOPIC).length === 0) return
    this.lastAnnounced = Date.now()
    pubsub.publish(DISCOVERY_TOPIC, encodeAnnouncement(this.components.addressManager.getAddresses())).catch((error: unknown) => this.log.error('announcing failed - %e', error))
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail
    if (message.topic !== DISCOVERY_TOPIC) return
    if (message.type !== 'signed') return
    const from = message.from
    if (from.equals(this.components.peerId)) return
    const now = Date.now()
    const last = this.lastTaken.get(from.toString())
    if (last !== undefined && now - last < this.interval / 2) return
    const addrs = decodeAnnouncement(message.data, from)
    if (addrs === null) {
      this.log('ignoring a malformed announcement from %p', from)
      return
    }
    if (this.lastTaken.size > 4096) this.lastTaken.clear()
    this.lastTaken.set(from.toString(), now)
    const info: PeerInfo = { id: from, multiaddrs: addrs }
    this.dispatchEvent(new CustomEvent('peer', { detail: info }))
  }
}

/** The libp2p peer-discovery factory. */
export function meshDiscovery(init: MeshDiscoveryInit = {}): (components: Components) => PeerDiscovery {
  return (components) => new MeshDiscovery(components, init) as unknown as PeerDiscovery
}
