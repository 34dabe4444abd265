import { setMaxListeners } from 'main-event'
import type { Connection, IdentifyResult, Libp2p, Logger, PeerDiscovery, PeerId, PeerInfo, PeerUpdate } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import {
  DEFAULT_FORGET_AFTER_MS,
  DEFAULT_REDIAL_MAX_DELAY_MS,
  DEFAULT_REDIAL_MIN_DELAY_MS,
  MAX_KNOWN_PEERS,
  MAX_UNMET_REDIALS,
  MESH_PEER_TAG,
  MESH_PEER_TAG_VALUE,
  PEER_BOOK_SAVE_DELAY_MS,
  WEBRTC_DIAL_YIELD_MS,
} from './constants.js'
import { loadPeerBook, savePeerBook, type PeerBookEntry } from './peer-book.js'

export interface RedialOptions {
  /** Nominal delay before the first redial of a peer that went away. */
  minDelayMs: number
  /** Ceiling of the doubling backoff. */
  maxDelayMs: number
  /** A peer not connected for this long is dropped from redial and from peers.json. */
  forgetAfterMs: number
  /** At most this many peers are kept (the least recently seen unconnected one is dropped first). */
  maxPeers: number
}

export const DEFAULT_REDIAL: RedialOptions = {
  minDelayMs: DEFAULT_REDIAL_MIN_DELAY_MS,
  maxDelayMs: DEFAULT_REDIAL_MAX_DELAY_MS,
  forgetAfterMs: DEFAULT_FORGET_AFTER_MS,
  maxPeers: MAX_KNOWN_PEERS,
}

/**
 * Delay before redial attempt number `attempt` (0-based): exponential backoff with "equal jitter"
 * — the nominal delay min·2^attempt (capped at max), then a uniformly random 50–100 % of it, so
 * peers that lost the same neighbour at the same moment do not redial it in lockstep.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const nominal = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return Math.round(nominal * (0.5 + 0.5 * random()))
}

/**
 * Every report of the node's discovery services (mDNS, bootstrap, mesh announcements), for the
 * keeper: libp2p emits 'peer:discovery' only for a peer new to its peer store, so without these a
 * peer heard of, tried MAX_UNMET_REDIALS times while it was unreachable and forgotten would never
 * be dialled again, however often it announced itself later. Two tabs whose first WebRTC dials
 * failed (a slow relay, ICE on a loaded machine) would stay apart for good. The keeper gives such
 * a peer one more try per report, at most once per redial ceiling (`maxDelayMs`), so a peer it
 * can never reach (another mesh's on the same LAN) costs one dial a minute, not a burst per mDNS
 * answer.
 */
export class DiscoveryReports {
  private listener: ((info: PeerInfo) => void) | undefined

  /** The discovery factory, its 'peer' events also reported here. */
  tap<C>(factory: (components: C) => PeerDiscovery): (components: C) => PeerDiscovery {
    return (components) => {
      const discovery = factory(components)
      discovery.addEventListener('peer', (event) => this.listener?.(event.detail))
      return discovery
    }
  }

  listen(listener: ((info: PeerInfo) => void) | undefined): void {
    this.listener = listener
  }
}

interface Entry {
  id: PeerId
  /** Last known addresses; kept here because libp2p's peer store expires them after an hour. */
  addrs: Multiaddr[]
  /** When the peer was last connected (or first heard of, if never connected). */
  lastSeen: number
  /** Whether we were ever connected: only such peers are saved to peers.json. */
  met: boolean
  /** Time spent connected (the peer book keeps the most useful peers). */
  connectedMs: number
  /** When the current connection began (undefined: not connected). */
  connectedSince: number | undefined
  attempt: number
  timer?: ReturnType<typeof setTimeout>
  dialing: boolean
  /** This dial waited once for the other side to dial (WEBRTC_DIAL_YIELD_MS). */
  yielded: boolean
}

/**
 * Keeps this peer connected to every mesh peer it knows of: peers it has been connected to,
 * peers a discovery mechanism reported (mDNS, bootstrap, pubsub peer discovery), and the peers
 * saved in peers.json by an earlier run.
 *
 * Why our own loop rather than libp2p's KEEP_ALIVE tag + reconnect queue: libp2p's queue gives up
 * after `reconnectRetries` (default 5, ≈31 s in all) and then removes the tag, so a peer that is
 * down for a few minutes (a restart, a reboot, a flaky uplink) would never be redialled; it has no
 * jitter; and its addresses come from the in-memory peer store, which forgets them after an hour
 * and across restarts. This loop retries with capped exponential backoff and jitter until the peer
 * has been unreachable for `forgetAfterMs`, remembers addresses itself, and persists them.
 *
 * libp2p v3 does not dial what discovery finds, and emits 'peer:discovery' only for peers new to
 * its peer store; so discovered peers are dialled here, and peers whose addresses change later
 * (a restart on another port) are reached through the redial loop, which re-reads addresses from
 * 'peer:update' and 'peer:identify'. A relayed (limited) connection counts as connected: DCUtR
 * upgrades it to a direct one when it can.
 *
 * One-shot: start() once, stop() once.
 */
export class MeshKeeper {
  private readonly entries = new Map<string, Entry>()
  /** Peers forgotten as never reached → when (bounded like the book): a report of one waits out the redial ceiling. */
  private readonly unreached = new Map<string, number>()
  /** Shared by every redial: many in flight at once is normal, not a listener leak. */
  private readonly abort = withUnboundedListeners(new AbortController())
  private running = false
  /** Offline (a browser tab without network, or switched off): no redials until resumed. */
  private paused = false
  private saveTimer: ReturnType<typeof setTimeout> | undefined
  private saving: Promise<void> = Promise.resolve()
  private readonly log: Logger

  constructor(
    private readonly libp2p: Libp2p,
    private readonly options: RedialOptions,
    private readonly bookFile: string | undefined,
    private readonly random: () => number = Math.random,
    private readonly reports?: DiscoveryReports,
  ) {
    this.log = libp2p.logger.forComponent('shoal:net:mesh-keeper')
  }

  /** Attach to the node's events and redial the peers saved by an earlier run. Call before libp2p.start(). */
  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    const events = this.libp2p
    for (const [name, handler] of this.listeners()) (events as unknown as EventTarget).addEventListener(name, handler)
    this.reports?.listen(this.heard)

    if (this.bookFile === undefined) return
    const now = Date.now()
    for (const saved of await loadPeerBook(this.bookFile)) {
      if (now - saved.lastSeen > this.options.forgetAfterMs) continue
      let id: PeerId
      try {
        id = peerIdFromString(saved.id)
      } catch {
        continue
      }
      if (id.equals(this.libp2p.peerId)) continue
      const addrs: Multiaddr[] = []
      for (const a of saved.addrs) {
        try {
          addrs.push(multiaddr(a))
        } catch {
          // skip an address this version cannot parse
        }
      }
      const entry = this.add(id, saved.lastSeen)
      entry.met = true
      entry.connectedMs = saved.connectedMs ?? 0
      if (addrs.length > 0) entry.addrs = addrs
    }
  }

  /** The node events this keeper follows, with their handlers. */
  private listeners(): Array<[string, EventListener]> {
    return [
      ['peer:connect', this.onConnect as EventListener],
      ['peer:disconnect', this.onDisconnect as EventListener],
      ['peer:discovery', this.onDiscovery as EventListener],
      ['peer:update', this.onUpdate as EventListener],
      ['peer:identify', this.onIdentify as EventListener],
      ['connection:open', this.onConnectionOpen as EventListener],
    ]
  }

  /** Stop redialling while offline (pending redials are dropped); resume() dials every known peer at once. */
  pause(): void {
    this.paused = true
    for (const entry of this.entries.values()) {
      clearTimeout(entry.timer)
      entry.timer = undefined
    }
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    for (const entry of this.entries.values()) entry.attempt = 0
    this.redialAll()
  }

  /** Dial every known peer now (after libp2p has started). */
  redialAll(): void {
    for (const entry of this.entries.values()) this.schedule(entry, 0)
  }

  /** Stop redialling and save peers.json. Call before libp2p.stop(), whose disconnects must not be redialled. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.abort.abort()
    const events = this.libp2p
    for (const [name, handler] of this.listeners()) (events as unknown as EventTarget).removeEventListener(name, handler)
    this.reports?.listen(undefined)
    for (const entry of this.entries.values()) clearTimeout(entry.timer)
    clearTimeout(this.saveTimer)
    this.saveTimer = undefined
    // mark connected peers as seen now, then write the final state
    const now = Date.now()
    for (const entry of this.entries.values()) if (this.connected(entry.id)) entry.lastSeen = now
    await this.save()
  }

  /** Peers this node keeps connections to. */
  knownPeers(): PeerId[] {
    return [...this.entries.values()].map((e) => e.id)
  }

  /** Stop redialling a peer and drop it from peers.json (does not close an open connection). */
  forget(peer: PeerId): void {
    const entry = this.entries.get(peer.toString())
    if (entry === undefined) return
    clearTimeout(entry.timer)
    this.entries.delete(peer.toString())
    this.scheduleSave()
  }

  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    this.unreached.delete(evt.detail.toString())
    const entry = this.add(evt.detail, Date.now())
    entry.met = true
    entry.lastSeen = Date.now()
    entry.connectedSince ??= entry.lastSeen
    entry.attempt = 0
    clearTimeout(entry.timer)
    entry.timer = undefined
    this.libp2p.peerStore
      .merge(evt.detail, { tags: { [MESH_PEER_TAG]: { value: MESH_PEER_TAG_VALUE } } })
      .catch((err: unknown) => this.log.error('could not tag %p - %e', evt.detail, err))
    this.scheduleSave()
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const entry = this.entries.get(evt.detail.toString())
    if (entry === undefined) return
    const now = Date.now()
    if (entry.connectedSince !== undefined && !this.connected(entry.id)) {
      entry.connectedMs += now - entry.connectedSince
      entry.connectedSince = undefined
    }
    if (!this.running) return
    entry.lastSeen = now
    entry.attempt = 0
    this.schedule(entry, backoffDelay(0, this.options.minDelayMs, this.options.maxDelayMs, this.random))
    this.scheduleSave()
  }

  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => this.heard(evt.detail)

  /** A peer was discovered or announced itself again: dial it unless connected or already on it. */
  private readonly heard = ({ id, multiaddrs }: PeerInfo): void => {
    if (!this.running || id.equals(this.libp2p.peerId)) return
    const key = id.toString()
    const forgottenAt = this.unreached.get(key)
    if (forgottenAt !== undefined && !this.entries.has(key)) {
      if (Date.now() - forgottenAt < this.options.maxDelayMs) return
      this.unreached.delete(key)
    }
    const entry = this.add(id, Date.now())
    // Tried and forgotten before: one more try now, not a fresh series.
    if (forgottenAt !== undefined && !entry.met) entry.attempt = Math.max(entry.attempt, MAX_UNMET_REDIALS - 1)
    if (multiaddrs.length > 0) entry.addrs = [...multiaddrs]
    // Nothing to dial yet (a tab before its relay slot): its next announcement will say where.
    if (entry.addrs.length > 0) this.schedule(entry, 0)
  }

  private readonly onUpdate = (evt: CustomEvent<PeerUpdate>): void => {
    const entry = this.entries.get(evt.detail.peer.id.toString())
    if (entry === undefined) return
    const addrs = evt.detail.peer.addresses.map((a) => a.multiaddr)
    if (addrs.length > 0) entry.addrs = addrs
  }

  /** Until identify reports the peer's listen addresses, the address we dialled it on will do. */
  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (conn.direction !== 'outbound' || conn.limits !== undefined) return
    const entry = this.entries.get(conn.remotePeer.toString())
    if (entry !== undefined && entry.addrs.length === 0) entry.addrs = [conn.remoteAddr]
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const entry = this.entries.get(evt.detail.peerId.toString())
    if (entry === undefined) return
    if (evt.detail.listenAddrs.length > 0) entry.addrs = [...evt.detail.listenAddrs]
    this.scheduleSave()
  }

  private add(id: PeerId, lastSeen: number): Entry {
    const key = id.toString()
    let entry = this.entries.get(key)
    if (entry !== undefined) return entry
    if (this.entries.size >= this.options.maxPeers) this.evictOne()
    entry = { id, addrs: [], lastSeen, met: false, connectedMs: 0, connectedSince: undefined, attempt: 0, dialing: false, yielded: false }
    this.entries.set(key, entry)
    return entry
  }

  /**
   * Makes room in the book: a peer never met goes first (the oldest heard of), then the met peer
   * that has been connected least. Connected peers stay. So announcements of peers that never
   * answer cannot crowd out the peers this one actually replicates with.
   */
  private evictOne(): void {
    let victim: Entry | undefined
    const worse = (a: Entry, b: Entry): boolean => {
      if (a.met !== b.met) return !a.met
      if (!a.met) return a.lastSeen < b.lastSeen
      return a.connectedMs < b.connectedMs || (a.connectedMs === b.connectedMs && a.lastSeen < b.lastSeen)
    }
    for (const entry of this.entries.values()) {
      if (this.connected(entry.id)) continue
      if (victim === undefined || worse(entry, victim)) victim = entry
    }
    if (victim !== undefined) this.forget(victim.id)
  }

  private connected(id: PeerId): boolean {
    return this.libp2p.getConnections(id).length > 0
  }

  private schedule(entry: Entry, delayMs: number): void {
    if (!this.running || this.paused || entry.dialing || entry.timer !== undefined) return
    if (delayMs === 0 && this.connected(entry.id)) return
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      void this.attempt(entry)
    }, delayMs)
    unref(entry.timer)
  }

  /** Whether both ends are reachable only over WebRTC and the other is the one to dial (WEBRTC_DIAL_YIELD_MS). */
  private yieldsTo(entry: Entry): boolean {
    return entry.addrs.length > 0 && entry.addrs.every(isWebRtc) && this.libp2p.getMultiaddrs().some(isWebRtc) && this.libp2p.peerId.toString() > entry.id.toString()
  }

  private async attempt(entry: Entry): Promise<void> {
    if (!this.running || this.paused || this.entries.get(entry.id.toString()) !== entry) return
    if (this.connected(entry.id)) {
      entry.attempt = 0
      return
    }
    if (Date.now() - entry.lastSeen > this.options.forgetAfterMs) {
      this.log('forgetting %p: unreachable since %s', entry.id, new Date(entry.lastSeen).toISOString())
      this.forget(entry.id)
      return
    }
    if (!entry.yielded && this.yieldsTo(entry)) {
      entry.yielded = true
      this.schedule(entry, WEBRTC_DIAL_YIELD_MS)
      return
    }
    entry.yielded = false
    entry.dialing = true
    try {
      // re-add the addresses we remember: the peer store may have expired them
      if (entry.addrs.length > 0) await this.libp2p.peerStore.merge(entry.id, { multiaddrs: entry.addrs })
      await this.libp2p.dial(entry.id, { signal: this.abort.signal })
      entry.attempt = 0
    } catch (err) {
      entry.dialing = false
      if (!this.running) return
      entry.attempt++
      if (!entry.met && entry.attempt >= MAX_UNMET_REDIALS) {
        // Heard of, never reached: not worth redialling for days (and maybe not a real peer).
        this.log('forgetting %p: never reached after %d attempts', entry.id, entry.attempt)
        this.forget(entry.id)
        if (this.unreached.size >= this.options.maxPeers) this.unreached.delete(this.unreached.keys().next().value!)
        this.unreached.set(entry.id.toString(), Date.now())
        return
      }
      const delay = backoffDelay(entry.attempt, this.options.minDelayMs, this.options.maxDelayMs, this.random)
      this.log('redial of %p failed (attempt %d), next in %d ms - %e', entry.id, entry.attempt, delay, err)
      this.schedule(entry, delay)
      return
    }
    entry.dialing = false
  }

  private scheduleSave(): void {
    if (this.bookFile === undefined || !this.running || this.saveTimer !== undefined) return
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined
      void this.save()
    }, PEER_BOOK_SAVE_DELAY_MS)
    unref(this.saveTimer)
  }

  private save(): Promise<void> {
    const file = this.bookFile
    if (file === undefined) return Promise.resolve()
    const now = Date.now()
    const peers: PeerBookEntry[] = []
    for (const entry of this.entries.values()) {
      if (!entry.met) continue
      const current = entry.connectedSince === undefined ? 0 : now - entry.connectedSince
      peers.push({
        id: entry.id.toString(),
        addrs: entry.addrs.map((a) => a.toString()),
        lastSeen: this.running && this.connected(entry.id) ? now : entry.lastSeen,
        connectedMs: entry.connectedMs + current,
      })
    }
    // chain the writes so an older snapshot never lands after a newer one
    this.saving = this.saving
      .then(() => savePeerBook(file, peers))
      .catch((err: unknown) => this.log.error('could not save %s - %e', file, err))
    return this.saving
  }
}

function isWebRtc(addr: Multiaddr): boolean {
  return addr.getComponents().some((c) => c.name === 'webrtc')
}

/** A timer that does not keep a Node process alive (browsers' timers have no unref). */
function unref(timer: ReturnType<typeof setTimeout>): void {
  ;(timer as { unref?: () => void }).unref?.()
}

function withUnboundedListeners(controller: AbortController): AbortController {
  setMaxListeners(Infinity, controller.signal)
  return controller
}
