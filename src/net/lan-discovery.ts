import { networkInterfaces } from 'node:os'
import { peerDiscoverySymbol, type ComponentLogger, type Logger, type PeerDiscovery, type PeerId, type PeerInfo, type Startable } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { announcedAddress } from './announced-address.js'
import multicastDns from 'multicast-dns'
import { MAX_ANNOUNCED_ADDRS, MDNS_SERVICE_TAG } from './constants.js'

/*
 * Peers on the same LAN find each other by mDNS, with the records @libp2p/mdns uses (a PTR for the
 * service name, the peer's addresses as TXT `dnsaddr=` strings), so peers of either kind meet.
 * Why not @libp2p/mdns itself: it leaves the socket's multicast interface to the kernel's routing
 * table, and a host with only its LAN route (no default route: a site LAN without uplink) has no
 * route to 224.0.0.251, so it can never send a query or an answer. Here one socket is opened per
 * IPv4 interface, with that interface set for multicast. A response is taken only if every
 * address it gives names the same peer, at most MAX_ANNOUNCED_ADDRS of them: a host on the LAN
 * cannot make this peer dial addresses in another peer's name.
 */

export interface LanDiscoveryInit {
  /** How often to ask the LAN (default 10 s). */
  interval?: number
  serviceTag?: string
}

interface Components {
  peerId: PeerId
  addressManager: { getAddresses(): Multiaddr[] }
  logger: ComponentLogger
}

type Mdns = ReturnType<typeof multicastDns>
type Packet = { answers?: Array<{ name: string; type: string; data: unknown }>; additionals?: Array<{ name: string; type: string; data: unknown }>; questions?: Array<{ name: string; type: string }> }

/** The IPv4 addresses of this host's interfaces that can carry multicast (not loopback). */
export function lanAddresses(): string[] {
  const out: string[] = []
  for (const list of Object.values(networkInterfaces())) {
    for (const iface of list ?? []) if ((iface.family === 'IPv4' || (iface.family as unknown) === 4) && !iface.internal) out.push(iface.address)
  }
  return out
}

/** The peer and addresses a response gives; null unless every address names one peer (not `self`). */
export function peerOfResponse(packet: Packet, serviceTag: string, self: string): PeerInfo | null {
  const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
  if (!records.some((r) => r.type === 'PTR' && r.name === serviceTag)) return null
  const texts: string[] = []
  for (const r of records) {
    if (r.type !== 'TXT') continue
    for (const d of Array.isArray(r.data) ? r.data : [r.data]) {
      const text = d instanceof Uint8Array ? Buffer.from(d).toString('utf8') : typeof d === 'string' ? d : ''
      if (text.startsWith('dnsaddr=')) texts.push(text.slice('dnsaddr='.length))
    }
  }
  if (texts.length === 0 || texts.length > MAX_ANNOUNCED_ADDRS) return null
  let peer: string | null = null
  const addrs: Multiaddr[] = []
  for (const text of texts) {
    const announced = announcedAddress(text)
    const id = announced?.peer
    if (announced === null || id === undefined || (peer !== null && id !== peer)) return null
    peer = id
    addrs.push(announced.addr)
  }
  if (peer === null || peer === self) return null
  try {
    return { id: peerIdFromString(peer), multiaddrs: addrs }
  } catch {
    return null
  }
}

class LanDiscovery extends EventTarget implements Startable {
  readonly [peerDiscoverySymbol] = this as unknown as PeerDiscovery
  readonly [Symbol.toStringTag] = '@shoal/lan-discovery'
  private readonly interval: number
  private readonly serviceTag: string
  private readonly log: Logger
  /** A stable, random-looking name for this peer's records. */
  private readonly name: string
  private sockets: Mdns[] = []
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly components: Components,
    init: LanDiscoveryInit,
  ) {
    super()
    this.interval = init.interval ?? 10_000
    this.serviceTag = init.serviceTag ?? MDNS_SERVICE_TAG
    this.log = components.logger.forComponent('shoal:net:lan-discovery')
    this.name = components.peerId.toString().slice(-32)
  }

  start(): void {
    for (const address of lanAddresses()) {
      const socket = multicastDns({ interface: address, bind: '0.0.0.0', reuseAddr: true })
      socket.on('query', (query: Packet) => this.answer(socket, query))
      socket.on('response', (response: Packet) => this.take(response))
      // A send that fails (the interface went away) is worth a log line, never a crash.
      socket.on('error', (error: Error) => this.log('mDNS on %s: %s', address, error.message))
      socket.on('warning', (error: Error) => this.log('mDNS on %s: %s', address, error.message))
      this.sockets.push(socket)
    }
  }

  afterStart(): void {
    this.ask()
    this.timer = setInterval(() => this.ask(), this.interval)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    for (const socket of this.sockets) socket.destroy()
    this.sockets = []
  }

  private ask(): void {
    for (const socket of this.sockets) socket.query({ questions: [{ name: this.serviceTag, type: 'PTR' }] })
  }

  private answer(socket: Mdns, query: Packet): void {
    if (!(query.questions ?? []).some((q) => q.name === this.serviceTag)) return
    const self = this.components.peerId.toString()
    const texts = this.components.addressManager
      .getAddresses()
      .map((a) => (a.getComponents().some((c) => c.name === 'p2p') ? a : a.encapsulate(`/p2p/${self}`)).toString())
      .filter((t) => t.length + 'dnsaddr='.length <= 255)
      .slice(0, MAX_ANNOUNCED_ADDRS)
    if (texts.length === 0) return
    const host = `${this.name}.${this.serviceTag}`
    socket.respond({
      answers: [
        { name: this.serviceTag, type: 'PTR', class: 'IN', ttl: 120, data: host },
        ...texts.map((t) => ({ name: host, type: 'TXT' as const, class: 'IN' as const, ttl: 120, data: `dnsaddr=${t}` })),
      ],
    })
  }

  private take(response: Packet): void {
    const info = peerOfResponse(response, this.serviceTag, this.components.peerId.toString())
    if (info !== null) this.dispatchEvent(new CustomEvent('peer', { detail: info }))
  }
}

/** The libp2p peer-discovery factory. */
export function lanDiscovery(init: LanDiscoveryInit = {}): (components: Components) => PeerDiscovery {
  return (components) => new LanDiscovery(components, init) as unknown as PeerDiscovery
}
