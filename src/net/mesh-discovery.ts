import type { GossipSub, Message } from '@libp2p/gossipsub'
import { peerDiscoverySymbol, type ComponentLogger, type Libp2pEvents, type Logger, type PeerDiscovery, type PeerId, type PeerInfo, type PrivateKey, type Startable } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { TypedEventTarget } from 'main-event'
import { announcedAddress } from './announced-address.js'
import { decode, encode } from 'cborg'
import { DEFAULT_DISCOVERY_INTERVAL_MS, DISCOVERY_TOPIC, MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCED_ADDR_BYTES } from './constants.js'

/*
 * Peers learn of further peers from the ones they meet: each peer announces its own addresses on
 * a gossipsub topic, and gossipsub carries the announcement across the mesh.
 *
 * Why not @libp2p/pubsub-peer-discovery: it takes the announced peer's identity from the
 * message's payload (a public key anyone can copy) and all of its addresses, so any peer could
 * make every other peer dial addresses of its choosing in another peer's name, and keep them
 * redialling. Here an announcement is only ever about its signer: it is signed by the key of the
 * peer it describes (by itself, so it holds whether gossipsub signs messages or not: a private
 * mesh does not), its addresses are at most MAX_ANNOUNCED_ADDRS valid multiaddrs that name no
 * other peer, and one peer's announcements are taken at most once per half interval, or every
 * few seconds when its addresses change (a browser tab has one only once a relay gives it a slot).
 */

const VERSION = 2
/** Signed before the payload, so an announcement's signature can stand for nothing else. */
const DOMAIN = new TextEncoder().encode('shoal-discovery-announcement\u0000')
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
  privateKey: PrivateKey
  pubsub: GossipSub
  addressManager: { getAddresses(): Multiaddr[] }
  logger: ComponentLogger
  events: TypedEventTarget<Libp2pEvents>
}

function signedPart(addrs: readonly Uint8Array[], peer: string): Uint8Array {
  const body = encode([VERSION, 'peer', addrs, peer])
  const out = new Uint8Array(DOMAIN.length + body.length)
  out.set(DOMAIN)
  out.set(body, DOMAIN.length)
  return out
}

/** This peer's announcement of its addresses, signed with its key. */
export async function encodeAnnouncement(addrs: readonly Multiaddr[], key: PrivateKey): Promise<Uint8Array> {
  const raw = addrs.slice(0, MAX_ANNOUNCED_ADDRS).map((a) => a.bytes)
  const peer = peerIdFromPrivateKey(key).toString()
  return encode([VERSION, 'peer', raw, peer, await key.sign(signedPart(raw, peer))])
}

/** The peer an announcement is about and the addresses it gives for itself; null unless valid and signed by that peer. */
export async function decodeAnnouncement(data: Uint8Array): Promise<{ peer: PeerId; addrs: Multiaddr[] } | null> {
  let value: unknown
  try {
    value = decode(data)
  } catch {
    return null
  }
  if (!Array.isArray(value) || value.length !== 5 || value[0] !== VERSION || value[1] !== 'peer' || !Array.isArray(value[2])) return null
  const [, , raw, peerText, signature] = value as [unknown, unknown, unknown[], unknown, unknown]
  if (raw.length > MAX_ANNOUNCED_ADDRS || typeof peerText !== 'string' || peerText.length > 128 || !(signature instanceof Uint8Array) || signature.length > 128) return null
  let from: PeerId
  try {
    from = peerIdFromString(peerText)
  } catch {
    return null
  }
  // Ed25519 and secp256k1 peer ids hold their public key; any other kind cannot be checked here.
  if (from.publicKey === undefined) return null
  const out: Multiaddr[] = []
  for (const bytes of raw) {
    if (!(bytes instanceof Uint8Array) || bytes.length > MAX_ANNOUNCED_ADDR_BYTES) return null
    const announced = announcedAddress(bytes)
    // A relayed address names the relay first and the sender last; any other peer id is refused.
    if (announced === null || (announced.peer !== undefined && announced.peer !== from.toString())) return null
    out.push(announced.addr)
  }
  try {
    if (!(await from.publicKey.verify(signedPart(raw as Uint8Array[], peerText), signature))) return null
  } catch {
    return null
  }
  return { peer: from, addrs: out }
}

class MeshDiscovery extends EventTarget implements Startable {
  readonly [peerDiscoverySymbol] = this as unknown as PeerDiscovery
  readonly [Symbol.toStringTag] = '@shoal/mesh-discovery'
  private readonly interval: number
  private readonly log: Logger
  private timer: ReturnType<typeof setInterval> | undefined
  private soon: ReturnType<typeof setTimeout> | undefined
  private lastAnnounced = 0
  /** What this peer last announced (its addresses, joined). */
  private announced = ''
  /** When each peer's announcement was last taken, and the addresses it gave. */
  private readonly lastTaken = new Map<string, { at: number; addrs: string }>()

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
    this.components.events.addEventListener('self:peer:update', this.onSelfUpdate)
    this.announce()
    this.timer = setInterval(() => this.announce(), this.interval)
  }

  beforeStop(): void {
    clearInterval(this.timer)
    clearTimeout(this.soon)
    this.timer = undefined
    this.components.pubsub.removeEventListener('message', this.onMessage)
    this.components.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.components.events.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.components.pubsub.unsubscribe(DISCOVERY_TOPIC)
  }

  stop(): void {}

  /**
   * A neighbour joining the topic hears of this peer soon rather than at the next interval (once
   * per ANNOUNCE_AGAIN_MS at most, however many join), so a new peer meets the mesh in seconds
   * while an idle mesh announces once a minute.
   */
  private readonly onSubscriptionChange = (event: CustomEvent<{ subscriptions: Array<{ topic: string; subscribe: boolean }> }>): void => {
    if (event.detail.subscriptions.some((s) => s.topic === DISCOVERY_TOPIC && s.subscribe)) this.announceSoon()
  }

  /** This peer's addresses changed (a relay slot, a new listener): the mesh hears the new ones soon. */
  private readonly onSelfUpdate = (): void => {
    if (this.addressesText(this.components.addressManager.getAddresses()) !== this.announced) this.announceSoon()
  }

  private announceSoon(): void {
    if (this.soon !== undefined || this.timer === undefined) return
    const wait = Math.max(ANNOUNCE_SOON_MS, this.lastAnnounced + ANNOUNCE_AGAIN_MS - Date.now())
    this.soon = setTimeout(() => {
      this.soon = undefined
      this.announce()
    }, wait)
  }

  private addressesText(addrs: readonly Multiaddr[]): string {
    return addrs
      .slice(0, MAX_ANNOUNCED_ADDRS)
      .map((a) => a.toString())
      .join(' ')
  }

  private announce(): void {
    const pubsub = this.components.pubsub
    if (pubsub.getSubscribers(DISCOVERY_TOPIC).length === 0) return
    const addrs = this.components.addressManager.getAddresses()
    // A peer no one can dial yet (a tab before its relay slot) announces once it can (onSelfUpdate).
    if (addrs.length === 0) return
    this.lastAnnounced = Date.now()
    this.announced = this.addressesText(addrs)
    encodeAnnouncement(addrs, this.components.privateKey)
      .then((bytes) => pubsub.publish(DISCOVERY_TOPIC, bytes))
      .catch((error: unknown) => this.log.error('announcing failed - %e', error))
  }

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail
    if (message.topic !== DISCOVERY_TOPIC) return
    void this.take(message.data)
  }

  private async take(data: Uint8Array): Promise<void> {
    const announced = await decodeAnnouncement(data)
    if (announced === null) {
      this.log('ignoring a malformed or unsigned announcement')
      return
    }
    const { peer, addrs } = announced
    if (peer.equals(this.components.peerId)) return
    // Counted once the signature holds: a forged one cannot spend another peer's turn.
    const now = Date.now()
    const text = this.addressesText(addrs)
    const last = this.lastTaken.get(peer.toString())
    // Changed addresses are taken sooner, but not more often than an honest peer announces.
    if (last !== undefined && now - last.at < (last.addrs === text ? this.interval / 2 : ANNOUNCE_AGAIN_MS / 2)) return
    if (this.lastTaken.size > 4096) this.lastTaken.clear()
    this.lastTaken.set(peer.toString(), { at: now, addrs: text })
    const info: PeerInfo = { id: peer, multiaddrs: addrs }
    this.dispatchEvent(new CustomEvent('peer', { detail: info }))
  }
}

/** The libp2p peer-discovery factory. */
export function meshDiscovery(init: MeshDiscoveryInit = {}): (components: Components) => PeerDiscovery {
  return (components) => new MeshDiscovery(components, init) as unknown as PeerDiscovery
}
