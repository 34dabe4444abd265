import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { errorText, quote, silentLogger, type Logger } from '../log.js'
import type { ShoalNode } from '../net/shoal-node.js'
import { BucketsByKey } from '../sync/token-bucket.js'
import { ADMIT_PROTOCOL, decodeHandshake, encodeHandshake, MAX_HANDSHAKE_BYTES, type Handshake } from '../trust/handshake.js'
import type { Membership } from '../trust/membership.js'
import { reasonOf, Refusals } from './refusals.js'

/** A peer refused admission is refused by the connection gater for this long (then it may try again). */
export const DENY_MS = 60_000
/** Handshakes a peer may start per second (each costs signature checks), and in a burst. */
export const HANDSHAKES_PER_SECOND = 2
const HANDSHAKE_BURST = 10
const HANDSHAKE_TIMEOUT_MS = 10_000
const ATTEMPTS = 3

export interface AdmissionInit {
  membership: Membership
  /** This peer's signed admission. */
  admission: Uint8Array
  logger?: Logger
  refusals?: Refusals
  /** Called when a connected peer's admission has been checked (new, or presented again). */
  onAdmitted?: (peer: string) => void
  /** Called when a peer is refused (for status). */
  onRefused?: (peer: string, reason: string) => void
  denyMs?: number
}

/**
 * The admission handshake of a private mesh (docs/trust.md, trust/handshake.ts): on every new
 * connection both sides present their admissions and the rules and revocations they hold. A peer
 * without a valid admission is hung up on and refused by the connection gater for DENY_MS (on an
 * inbound connection the mesh secret does not protect the dialler presents first: see speaksFirst); until
 * its admission has been checked nothing else is served to it (sync and gossip ask `admitted`).
 * When a new rule or revocation arrives it is sent on to every connected peer, and members it
 * revokes are hung up on at once.
 */
export class AdmissionService {
  private readonly denied = new Map<string, number>()
  private readonly logger: Logger
  private readonly refusals: Refusals
  private readonly buckets = new BucketsByKey(HANDSHAKES_PER_SECOND, HANDSHAKE_BURST)
  private readonly abort = new AbortController()
  private readonly running = new Set<Promise<unknown>>()
  /** Timers of inbound peers on open transports that have not presented themselves yet. */
  private readonly waiting = new Set<ReturnType<typeof setTimeout>>()
  /** Who waits for a peer's admission to be checked (whenAdmitted). */
  private readonly checks = new Map<string, Set<(admitted: boolean) => void>>()
  private node: ShoalNode | null = null
  private spreading = false

  constructor(private readonly init: AdmissionInit) {
    this.logger = init.logger ?? silentLogger
    this.refusals = init.refusals ?? new Refusals(this.logger)
  }

  /** For the connection gater: false while a peer is refused (recently failed admission, or revoked). */
  allows(peer: string): boolean {
    const until = this.denied.get(peer)
    if (until !== undefined) {
      if (until > Date.now()) return false
      this.denied.delete(peer)
    }
    return this.init.membership.lapsed([peer]).length === 0
  }

  /** True once the peer's admission has been checked and it is still a member. */
  admitted(peer: string): boolean {
    return this.init.membership.member(peer) !== null
  }

  /**
   * True once the peer's admission has been checked (at once if it has been), false if it is
   * refused or presents none within the handshake timeout. For services that must not wait for
   * the next connection to be gated, such as the circuit relay (net/shoal-node.ts gaterFrom).
   */
  whenAdmitted(peer: string): Promise<boolean> {
    if (this.admitted(peer)) return Promise.resolve(true)
    // Not refused while the service is starting: the node (and its relay) runs a moment before it.
    if (!this.allows(peer)) return Promise.resolve(false)
    return new Promise((resolve) => {
      let waiters = this.checks.get(peer)
      if (waiters === undefined) this.checks.set(peer, (waiters = new Set()))
      const done = (admitted: boolean): void => {
        clearTimeout(timer)
        waiters.delete(done)
        if (waiters.size === 0) this.checks.delete(peer)
        resolve(admitted)
      }
      const timer = setTimeout(() => done(this.admitted(peer)), HANDSHAKE_TIMEOUT_MS)
      waiters.add(done)
    })
  }

  private settle(peer: string, admitted: boolean): void {
    for (const done of [...(this.checks.get(peer) ?? [])]) done(admitted)
  }

  async start(node: ShoalNode): Promise<void> {
    this.node = node
    await node.libp2p.handle(ADMIT_PROTOCOL, (stream, connection) => this.track(this.respond(stream, connection)), { maxInboundStreams: 2 })
    node.libp2p.addEventListener('peer:connect', this.onConnect)
    this.init.membership.onChange = () => this.spread()
    for (const peer of node.connectedPeers()) {
      if (this.speaksFirst(peer)) void this.track(this.exchange(peer))
      else this.awaitPresentation(peer)
    }
  }

  async stop(): Promise<void> {
    const node = this.node
    if (node === null) return
    this.node = null
    for (const timer of this.waiting) clearTimeout(timer)
    this.waiting.clear()
    for (const peer of [...this.checks.keys()]) this.settle(peer, false)
    this.init.membership.onChange = undefined
    node.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.abort.abort()
    await node.libp2p.unhandle(ADMIT_PROTOCOL).catch(() => undefined)
    await Promise.allSettled([...this.running])
  }

  private readonly onConnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail
    if (this.speaksFirst(peer)) void this.track(this.exchange(peer))
    else this.awaitPresentation(peer)
  }

  /**
   * Whether this side presents itself as soon as a connection opens. Not on an inbound
   * connection the mesh secret does not protect (WebSockets, WebRTC, any on a browser tab:
   * ShoalNode.secretProtects): anyone may open one, and this side says nothing of the mesh (its
   * admission, the rules) until the dialler has presented a valid admission of its own.
   */
  private speaksFirst(peer: PeerId): boolean {
    const node = this.node
    if (node === null) return false
    return node.libp2p.getConnections(peer).some((c) => c.direction === 'outbound' || node.secretProtects(c))
  }

  /** A peer that connected inbound over an open transport must present a valid admission within the handshake timeout, or it is refused. */
  private awaitPresentation(peer: PeerId): void {
    const id = peer.toString()
    const timer = setTimeout(() => {
      this.waiting.delete(timer)
      const node = this.node
      if (node === null || this.admitted(id) || node.libp2p.getConnections(peer).length === 0) return
      void this.track(this.refuse(id, 'NOT_ADMITTED', `peer ${id} connected over a link the mesh secret does not cover and presented no admission within ${HANDSHAKE_TIMEOUT_MS / 1000} s`))
    }, HANDSHAKE_TIMEOUT_MS)
    this.waiting.add(timer)
  }

  private hello(): Uint8Array {
    const h: Handshake = { admission: this.init.admission, documents: this.init.membership.shared() }
    return encodeHandshake(h)
  }

  /** Presents this peer to `peer` and checks its answer; retried a few times (its handler may not be up yet). */
  private async exchange(peer: PeerId): Promise<void> {
    for (let attempt = 1; attempt <= ATTEMPTS && this.node !== null; attempt++) {
      const node = this.node
      let stream: Stream | undefined
      try {
        const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)])
        stream = await node.libp2p.dialProtocol(peer, ADMIT_PROTOCOL, { signal })
        const lp = lpStream(stream, { maxDataLength: MAX_HANDSHAKE_BYTES })
        await lp.write(this.hello(), { signal })
        const answer = (await lp.read({ signal })).subarray()
        await stream.close().catch(() => undefined)
        await this.take(peer.toString(), answer)
        return
      } catch (error) {
        stream?.abort(error as Error)
        if (this.abort.signal.aborted || node.libp2p.getConnections(peer).length === 0) return
        if (attempt === ATTEMPTS) {
          // A peer that will not present itself is not served; hang up so it can reconnect and try again.
          this.logger.warn(`admission handshake with ${peer.toString()} failed: ${errorText(error)}; hanging up`)
          await node.libp2p.hangUp(peer).catch(() => undefined)
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
      }
    }
  }

  private async respond(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    if (!this.buckets.take(peer, Date.now())) {
      this.refusals.refuse('RATE_LIMITED', `admission handshakes from ${peer} over ${HANDSHAKES_PER_SECOND}/s: stream closed`)
      stream.abort(new Error('too many handshakes'))
      return
    }
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)])
      const lp = lpStream(stream, { maxDataLength: MAX_HANDSHAKE_BYTES })
      const theirs = (await lp.read({ signal })).subarray()
      // Checked before answering: a peer that is not a member learns nothing of this mesh.
      if (!(await this.take(peer, theirs))) {
        stream.abort(new Error('not admitted'))
        return
      }
      await lp.write(this.hello(), { signal })
      await stream.close().catch(() => undefined)
    } catch (error) {
      stream.abort(error as Error)
      if (!this.abort.signal.aborted) this.refusals.refuse(reasonOf(error), `admission handshake from ${peer} failed: ${errorText(error)}`)
    }
  }

  /** Takes in a peer's handshake: documents first (its rules may be newer), then its admission. True if it is admitted. */
  private async take(peer: string, bytes: Uint8Array): Promise<boolean> {
    let hello: Handshake
    try {
      hello = decodeHandshake(bytes)
    } catch (error) {
      await this.refuse(peer, reasonOf(error), (error as Error).message)
      return false
    }
    for (const doc of hello.documents) {
      try {
        await this.init.membership.add(doc)
      } catch (error) {
        this.refusals.refuse(reasonOf(error), `a mesh document from ${peer} refused: ${errorText(error)}`)
      }
    }
    if (hello.admission === null) {
      await this.refuse(peer, 'NOT_ADMITTED', `peer ${peer} presented no admission to this mesh`)
      return false
    }
    const known = this.admitted(peer)
    try {
      await this.init.membership.admit(peer, hello.admission)
    } catch (error) {
      await this.refuse(peer, reasonOf(error), (error as Error).message)
      return false
    }
    if (!known) this.init.onAdmitted?.(peer)
    this.settle(peer, true)
    return true
  }

  private async refuse(peer: string, reason: string, message: string): Promise<void> {
    this.refusals.refuse(reason, `peer ${peer} refused: ${message}`)
    this.init.onRefused?.(peer, reason)
    this.denied.set(peer, Date.now() + (this.init.denyMs ?? DENY_MS))
    this.settle(peer, false)
    await this.node?.libp2p.hangUp(peerIdFromString(peer)).catch(() => undefined)
  }

  /** Rules or revocations changed: hang up on members no longer admitted, and pass the news on. */
  private spread(): void {
    if (this.spreading || this.node === null) return
    this.spreading = true
    queueMicrotask(() => {
      this.spreading = false
      const node = this.node
      if (node === null) return
      for (const peer of node.connectedPeers()) {
        const id = peer.toString()
        if (this.init.membership.lapsed([id]).length > 0) {
          this.logger.warn(`peer ${quote(id)} is no longer a member (revoked or expired): hanging up`)
          this.denied.set(id, Date.now() + (this.init.denyMs ?? DENY_MS))
          void node.libp2p.hangUp(peer).catch(() => undefined)
        } else if (this.speaksFirst(peer) || this.admitted(id)) {
          void this.track(this.exchange(peer))
        }
      }
    })
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work)
    void work.finally(() => this.running.delete(work))
    return work
  }
}
