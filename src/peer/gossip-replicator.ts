// Over 400 lines on purpose: one class holds gossip's per-topic state (subscriptions, held first
// messages, merge activity) that open and private meshes share; the pure parts are in sync/gossip.ts.
import type { GossipsubMessage, Message } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { errorText, quote, silentLogger, type Logger } from '../log.js'
import type { ShoalNode } from '../net/shoal-node.js'
import type { ReplicaSource } from '../store/replica-source.js'
import type { ChangeEvent } from '../store/store.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { partitionId } from '../table/ids.js'
import { isCarried, type Carries } from '../sync/carries.js'
import {
  decodeChangesetMessage,
  decodeDeltaBatch,
  decodePartitionAnnouncement,
  DEFAULT_COALESCE_MS,
  DEFLATE_TOPIC,
  encodeChangesetMessage,
  encodePartitionAnnouncement,
  GossipCoalescer,
  gossipKind,
  type GossipKind,
  MAX_GOSSIP_BYTES,
  parseTopic,
  PARTITIONS_TOPIC,
  topicFor,
} from '../sync/gossip.js'
import type { StoreChangesets } from '../sync/store-changesets.js'
import type { TrustGate } from '../sync/trust-gate.js'
import type { ChangesetRef } from '../store/changesets.js'
import { BucketsByKey } from '../sync/token-bucket.js'
import { MIN_GOSSIP_DEFLATE_BYTES, packGossip, SerialByKey, unpackGossip } from '../sync/gossip-deflate.js'
import { reasonOf, REFUSED, Refusals } from './refusals.js'

/**
 * How long the first messages on a partition this peer has just announced wait for a peer to
 * subscribe to it (peers carrying the table subscribe when the announcement reaches them).
 */
export const FIRST_SUBSCRIBER_WAIT_MS = 1_000

/**
 * Gossip topics (one per carried partition) this peer listens on at most. Gossipsub keeps mesh
 * state and heartbeat work per topic; past the cap, partitions still replicate by anti-entropy.
 * net/node.ts sizes gossipsub's per-peer topic budget to it.
 */
export const MAX_TOPICS = 4096

/** Peers whose early subscriptions a private-mesh peer keeps aside at most (until their admission is checked). */
const MAX_PENDING_PEERS = 1024

/**
 * Gossip one origin may make this peer apply per second, in messages and bytes (and bursts of
 * twice that). A busy writer coalesces its changes into at most ~200 messages a second per
 * partition; past the limits messages are dropped (counted RATE_LIMITED) and anti-entropy
 * repairs what they carried.
 */
export const GOSSIP_MESSAGES_PER_SECOND = 500
export const GOSSIP_BYTES_PER_SECOND = 8 * 1024 * 1024

export interface GossipReplicatorInit {
  coalesceMs?: number
  /** See FIRST_SUBSCRIBER_WAIT_MS. */
  firstSubscriberWaitMs?: number
  carries?: Carries
  logger?: Logger
  /** Where refusals are counted and logged (shared with anti-entropy in a running peer). */
  refusals?: Refusals
  /** Per-origin rates (defaults GOSSIP_MESSAGES_PER_SECOND, GOSSIP_BYTES_PER_SECOND). */
  messagesPerSecond?: number
  bytesPerSecond?: number
  /** Topics listened on at most (default MAX_TOPICS). */
  maxTopics?: number
  /**
   * Whether messages this peer sends may go deflated (config `deflate`, default true), on topics
   * whose every subscriber reads deflated gossip. Deflated gossip is read either way.
   */
  deflate?: boolean
  /**
   * In a private mesh: gossip carries signed changesets only, each checked by `changesets`
   * (signature, author's rights) before it is merged; peers not admitted are not listened to, and
   * a peer's subscription to a partition it may not read is ignored (it is sent nothing of it).
   */
  trust?: { gate: TrustGate; changesets: StoreChangesets; admitted: (peer: string) => boolean }
}

export interface GossipCounters {
  messagesOut: number
  messagesIn: number
  /** Partition announcements received (valid or not). */
  announcementsIn: number
  deltasOut: number
  deltasIn: number
  deltasApplied: number
  bytesOut: number
  bytesIn: number
}

/**
 * The fast path of replication: every committed local change is published at once (coalesced
 * over a few ms) on the gossipsub topic of its (table, partition); messages from peers are
 * merged with applyRemoteDelta. Anything refused is logged and counted, never thrown: a
 * misbehaving peer cannot stop this one. What gossip misses is left to anti-entropy.
 */
export class GossipReplicator {
  readonly counters: GossipCounters = { messagesOut: 0, messagesIn: 0, announcementsIn: 0, deltasOut: 0, deltasIn: 0, deltasApplied: 0, bytesOut: 0, bytesIn: 0 }
  readonly refusals: Refusals
  private readonly coalescer: GossipCoalescer
  private readonly subscribed = new Set<string>()
  private readonly announced = new Set<string>()
  /**
   * Messages of partitions announced by this peer that no peer listened to yet: gossipsub sends
   * only to current subscribers, so publishing them at once would lose them all and leave every
   * row of the first burst to anti-entropy. Released when a peer subscribes, or after a wait.
   */
  private readonly held = new Map<string, { messages: Uint8Array[]; cancel: () => void }>()
  /** Per topic: messages being deflated before they go out, and those after them. */
  private readonly sending = new SerialByKey()
  /** Per topic: messages being inflated before they are merged, and those after them. */
  private readonly receiving = new SerialByKey()
  /** When gossip last brought deltas on each topic (ms since the epoch). */
  private readonly lastReceived = new Map<string, number>()
  /** Messages being merged per topic: gossip on a topic is not quiet while one is. */
  private readonly merging = new Map<string, number>()
  private readonly logger: Logger
  private readonly carried: Carries
  private readonly messageBuckets: BucketsByKey
  private readonly byteBuckets: BucketsByKey
  private unsubscribeStore: (() => void) | null = null
  private restoreValidation: (() => void) | undefined
  private restoreTrust: (() => void) | undefined
  private replaySubscriptions: ((peer: string) => void) | undefined
  /** Private meshes: subscriptions of peers not admitted yet, by peer. */
  private readonly pending = new Map<string, Set<string>>()
  /** Changesets published: the events of one changeset's rows share its ref (and may interleave with other partitions'). */
  private readonly published = new WeakSet<ChangesetRef>()
  /**
   * Called when a peer announces a partition this peer carries but did not listen to: gossip on
   * it flows from now on; what was said before is for anti-entropy to fetch.
   */
  onPartitionLearned: ((table: string, partition: string, from: string, via: string) => void) | undefined
  private readonly onMessage = (event: CustomEvent<GossipsubMessage>): void => {
    void this.receive(event.detail.msg, event.detail.propagationSource.toString())
  }
  private readonly onSubscriptionChange = (event: CustomEvent<{ subscriptions: Array<{ topic: string; subscribe: boolean }> }>): void => {
    for (const { topic, subscribe } of event.detail.subscriptions) if (subscribe) this.release(topic)
  }

  constructor(
    private readonly source: ReplicaSource,
    private readonly node: ShoalNode,
    private readonly init: GossipReplicatorInit = {},
  ) {
    this.logger = init.logger ?? silentLogger
    this.refusals = init.refusals ?? new Refusals(this.logger)
    this.carried = init.carries ?? {}
    const messages = init.messagesPerSecond ?? GOSSIP_MESSAGES_PER_SECOND
    const bytes = init.bytesPerSecond ?? GOSSIP_BYTES_PER_SECOND
    this.messageBuckets = new BucketsByKey(messages, messages * 2)
    this.byteBuckets = new BucketsByKey(bytes, bytes * 2)
    this.coalescer = new GossipCoalescer({
      coalesceMs: init.coalesceMs ?? DEFAULT_COALESCE_MS,
      schedule: (fn, ms) => {
        const timer = setTimeout(fn, ms)
        return () => clearTimeout(timer)
      },
      publish: (topic, message) => {
        const held = this.held.get(topic)
        if (held !== undefined) held.messages.push(message)
        else this.publish(topic, message)
      },
    })
    this.enforceMembership()
  }

  private publish(topic: string, message: Uint8Array): void {
    const pack = this.init.deflate !== false && message.length >= MIN_GOSSIP_DEFLATE_BYTES && this.allReadDeflated(topic)
    if (!pack && !this.sending.busy(topic)) {
      this.send(topic, message)
      return
    }
    this.sending
      .run(topic, async () => this.send(topic, pack ? await packGossip(message) : message))
      .catch((error: unknown) => this.logger.warn(`deflating a message on ${topic} failed: ${errorText(error)}`))
  }

  private send(topic: string, message: Uint8Array): void {
    this.counters.messagesOut++
    this.counters.bytesOut += message.length
    this.node.pubsub.publish(topic, message).catch((error: unknown) => this.logger.warn(`publishing on ${topic} failed: ${errorText(error)}`))
  }

  /** True when the topic has subscribers and every one of them reads deflated gossip. */
  private allReadDeflated(topic: string): boolean {
    const subscribers = this.node.pubsub.getSubscribers(topic)
    if (subscribers.length === 0) return false
    const readers = new Set(this.node.pubsub.getSubscribers(DEFLATE_TOPIC).map((p) => p.toString()))
    return subscribers.every((p) => readers.has(p.toString()))
  }

  /** Holds the messages of a partition nobody listens to yet (see `held`). */
  private hold(topic: string): void {
    if (this.held.has(topic) || this.node.pubsub.getSubscribers(topic).length > 0) return
    const timer = setTimeout(() => this.release(topic), this.init.firstSubscriberWaitMs ?? FIRST_SUBSCRIBER_WAIT_MS)
    this.held.set(topic, { messages: [], cancel: () => clearTimeout(timer) })
  }

  private release(topic: string): void {
    const held = this.held.get(topic)
    if (held === undefined) return
    this.held.delete(topic)
    held.cancel()
    for (const message of held.messages) this.publish(topic, message)
  }

  /** Milliseconds since gossip last brought deltas for (table, partition) and they were merged; 0 while merging; Infinity if never. */
  idleMs(table: string, partition: string): number {
    const topic = topicFor(table, partition)
    if ((this.merging.get(topic) ?? 0) > 0) return 0
    const at = this.lastReceived.get(topic)
    return at === undefined ? Infinity : Date.now() - at
  }

  /** Runs a merge of gossip on `topic`, which counts as activity on it from start to end. */
  private async merge<T>(topic: string, work: () => Promise<T>): Promise<T> {
    this.merging.set(topic, (this.merging.get(topic) ?? 0) + 1)
    try {
      return await work()
    } finally {
      const left = (this.merging.get(topic) ?? 1) - 1
      if (left > 0) this.merging.set(topic, left)
      else this.merging.delete(topic)
      this.lastReceived.set(topic, Date.now())
    }
  }

  start(): void {
    this.watchRejected()
    this.node.pubsub.addEventListener('gossipsub:message', this.onMessage)
    this.node.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.node.pubsub.subscribe(PARTITIONS_TOPIC)
    this.node.pubsub.subscribe(DEFLATE_TOPIC)
    this.subscribe(CATALOG_TABLE, '')
    for (const [table, partitions] of Object.entries(this.carried)) for (const p of partitions) this.subscribe(table, p)
    for (const schema of this.source.tables()) {
      if (schema.partitionBy === null) this.subscribe(schema.name, '')
      for (const p of this.source.partitions(schema.name)) this.subscribe(schema.name, p.partition)
    }
    this.unsubscribeStore = this.source.subscribe((event) => this.onChange(event))
  }

  /**
   * Gossipsub drops a message whose signature does not verify (or that fails its other checks)
   * before any event reaches us; wrap its check so each such refusal is logged and counted like
   * ours. Only observes: the result is passed through unchanged.
   */
  private watchRejected(): void {
    type Validate = (from: { toString(): string }, message: { topic: string }) => Promise<{ code: string; error?: string }>
    const pubsub = this.node.pubsub as unknown as { validateReceivedMessage?: Validate }
    const original = pubsub.validateReceivedMessage
    if (typeof original !== 'function') return
    pubsub.validateReceivedMessage = async (from, message) => {
      const result = await original.call(pubsub, from, message)
      if (result.code === 'invalid' && result.error !== undefined) this.refuse(REFUSED.SIGNATURE, `gossip message from ${from.toString()} on ${quote(message.topic)} rejected: ${result.error}`)
      return result
    }
    this.restoreValidation = () => {
      pubsub.validateReceivedMessage = original
    }
  }

  /**
   * Private meshes: gossipsub takes messages only from admitted peers, and ignores a peer's
   * subscription to a partition the rules do not let it read, so it is never sent that partition.
   * Subscriptions a peer sends before its admission has been checked (they come first, as soon as
   * the connection opens) are kept aside and taken in once it is admitted (peerAdmitted).
   */
  private enforceMembership(): void {
    const trust = this.init.trust
    if (trust === undefined) return
    type From = { toString(): string }
    type Router = {
      validateReceivedMessage?: (from: From, message: { topic: string }) => Promise<{ code: string; error?: string; msgIdStr?: string }>
      handleReceivedSubscription?: (from: From, topic: string, subscribe: boolean) => boolean
    }
    const router = this.node.pubsub as unknown as Router
    const validate = router.validateReceivedMessage
    const handleSubscription = router.handleReceivedSubscription
    if (typeof validate !== 'function' || typeof handleSubscription !== 'function') {
      throw new Error('this gossipsub version does not offer the hooks a private mesh needs (validateReceivedMessage, handleReceivedSubscription); pin @libp2p/gossipsub as package.json does')
    }
    // Dropped as a duplicate: no score penalty for a member whose message beat its own handshake.
    router.validateReceivedMessage = async (from, message) => (trust.admitted(from.toString()) ? validate.call(router, from, message) : { code: 'duplicate', msgIdStr: '' })
    router.handleReceivedSubscription = (from, topic, subscribe) => {
      const peer = from.toString()
      if (!trust.admitted(peer)) {
        this.pendingSubscription(peer, topic, subscribe)
        return false
      }
      if (subscribe) {
        const target = parseTopic(topic)
        if (target !== null && topic !== PARTITIONS_TOPIC && !trust.gate.readable(peer, target.table, target.partition)) {
          this.refuse('FORBIDDEN', `subscription of ${peer} to ${quote(topic)} ignored: the mesh rules do not let it read that partition`)
          return false
        }
      }
      return handleSubscription.call(router, from, topic, subscribe)
    }
    this.replaySubscriptions = (peer) => {
      const topics = this.pending.get(peer)
      this.pending.delete(peer)
      if (topics === undefined) return
      const from = peerIdFromString(peer)
      for (const topic of topics) router.handleReceivedSubscription!(from, topic, true)
    }
    this.restoreTrust = () => {
      router.validateReceivedMessage = validate
      router.handleReceivedSubscription = handleSubscription
    }
  }

  private pendingSubscription(peer: string, topic: string, subscribe: boolean): void {
    let topics = this.pending.get(peer)
    if (!subscribe) {
      topics?.delete(topic)
      return
    }
    if (topics === undefined) {
      if (this.pending.size >= MAX_PENDING_PEERS) this.pending.delete(this.pending.keys().next().value!)
      this.pending.set(peer, (topics = new Set()))
    }
    if (topics.size < (this.init.maxTopics ?? MAX_TOPICS)) topics.add(topic)
  }

  /** A peer's admission has been checked: take in the subscriptions it sent before. */
  peerAdmitted(peer: string): void {
    this.replaySubscriptions?.(peer)
  }

  /** Publishes what is queued, then leaves the topics. */
  async stop(): Promise<void> {
    this.restoreValidation?.()
    this.restoreValidation = undefined
    this.restoreTrust?.()
    this.restoreTrust = undefined
    this.unsubscribeStore?.()
    this.unsubscribeStore = null
    this.coalescer.flush()
    for (const topic of [...this.held.keys()]) this.release(topic)
    await this.sending.idle()
    this.node.pubsub.removeEventListener('gossipsub:message', this.onMessage)
    this.node.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.node.pubsub.unsubscribe(PARTITIONS_TOPIC)
    this.node.pubsub.unsubscribe(DEFLATE_TOPIC)
    for (const topic of this.subscribed) this.node.pubsub.unsubscribe(topic)
    this.subscribed.clear()
  }

  /** Topics this peer listens on. */
  topics(): string[] {
    return [...this.subscribed]
  }

  /** Listens to a partition this peer carries (learned from a peer by anti-entropy or announcement); true if that is new. */
  listen(table: string, partition: string): boolean {
    if (!isCarried(this.carried, table, partition)) return false
    return this.subscribe(table, partition)
  }

  /** Returns true if the topic is new to this peer. */
  private subscribe(table: string, partition: string): boolean {
    const topic = topicFor(table, partition)
    if (this.subscribed.has(topic)) return false
    const max = this.init.maxTopics ?? MAX_TOPICS
    if (this.subscribed.size >= max) {
      this.logger.warn(`not listening to gossip on ${table}/${quote(partition)}: this peer listens on ${max} topics already (MAX_TOPICS); the partition replicates by anti-entropy only`)
      return false
    }
    this.subscribed.add(topic)
    // Listening counts as activity: a round waiting for gossip on it to go quiet gives the
    // messages held for the first subscriber time to arrive.
    this.lastReceived.set(topic, Date.now())
    this.node.pubsub.subscribe(topic)
    return true
  }

  private onChange(event: ChangeEvent): void {
    // A table defined here, or learned from a peer, is carried from then on.
    if (event.table === CATALOG_TABLE && event.row !== null) {
      if (this.carried[event.key] === undefined && event.row.partitionBy === null) this.subscribe(event.key, '')
    }
    if (event.origin !== 'local') {
      // Rows of a partition new here arrived (anti-entropy): listen for its changes from now on.
      this.listen(event.table, event.partition)
      return
    }
    this.subscribe(event.table, event.partition)
    // The first write to a partition in this run tells the mesh about it, with the row: peers
    // carrying the whole table merge it, listen from then on, and fetch what they missed, even if
    // they have never held a row of it.
    const id = partitionId(event.table, event.partition)
    if (this.init.trust !== undefined) {
      this.onSignedChange(event, id)
      return
    }
    if (event.table !== CATALOG_TABLE && !this.announced.has(id)) {
      this.announced.add(id)
      this.hold(topicFor(event.table, event.partition))
      if (this.announce(event.table, event.partition, event.key, event.delta)) {
        this.counters.deltasOut++
        return
      }
    }
    if (this.coalescer.add(event.table, event.partition, event.key, event.delta)) this.counters.deltasOut++
  }

  /**
   * Private meshes: a local change goes out as its signed changeset (once for all its rows); a
   * partition's announcement names it without data, since every peer hears announcements and
   * only some may read the partition.
   */
  private onSignedChange(event: ChangeEvent, id: string): void {
    const ref = event.changeset
    if (ref === undefined) return
    // Counted per row, as in an open mesh (a changeset carries the deltas of many rows).
    this.counters.deltasOut++
    if (this.published.has(ref)) return
    this.published.add(ref)
    const topic = topicFor(event.table, event.partition)
    if (event.table !== CATALOG_TABLE && !this.announced.has(id)) {
      this.announced.add(id)
      this.hold(topic)
      this.announce(event.table, event.partition, event.key, null)
    }
    const message = encodeChangesetMessage(ref.bytes)
    if (message.length > MAX_GOSSIP_BYTES) return
    const held = this.held.get(topic)
    if (held !== undefined) held.messages.push(message)
    else this.publish(topic, message)
  }

  /** Announces a partition with its first row; true if the row went along (too large: it goes by the topic). */
  private announce(table: string, partition: string, key: string, delta: Uint8Array | null): boolean {
    const fits = delta !== null && delta.length + key.length * 3 + table.length + partition.length * 3 + 64 <= MAX_GOSSIP_BYTES
    // Unsigned gossip (a private mesh) does not say who sent it: the announcement does.
    const by = this.init.trust === undefined ? {} : { by: this.node.peerId.toString() }
    const message = encodePartitionAnnouncement({ table, partition, first: fits ? { key, delta: delta! } : null, ...by })
    this.counters.messagesOut++
    this.counters.bytesOut += message.length
    this.node.pubsub.publish(PARTITIONS_TOPIC, message).catch((error: unknown) => this.logger.warn(`announcing partition ${table}/${quote(partition)} failed: ${errorText(error)}`))
    return fits
  }

  private async onAnnouncement(message: Message, via: string): Promise<void> {
    this.counters.announcementsIn++
    const sender = this.senderOf(message, via)
    if (sender === null) {
      this.refuse(REFUSED.UNSIGNED, `unsigned partition announcement dropped`)
      return
    }
    if (!this.admit(sender, message.data.length)) return
    let announced
    try {
      announced = decodePartitionAnnouncement(message.data)
    } catch (error) {
      this.refuse(reasonOf(error), `partition announcement from ${sender} refused: ${errorText(error)}`)
      return
    }
    if (this.source.schema(announced.table) === undefined || !isCarried(this.carried, announced.table, announced.partition)) return
    // Signed gossip names its publisher; unsigned gossip (a private mesh) only its neighbour.
    const origin = message.type === 'signed' ? sender : (announced.by ?? sender)
    const known = this.subscribed.has(topicFor(announced.table, announced.partition))
    // A peer's word is not a row: the topic is listened to once the announced row has passed its
    // checks (onChange), or, without one, once the round asked for here brings a row that does.
    if (announced.first !== null && this.init.trust !== undefined) {
      this.refuse('FORBIDDEN', `partition announcement from ${origin} carries a row: a private mesh takes signed changesets only`)
      return
    }
    if (announced.first !== null) {
      this.counters.deltasIn++
      const first = announced.first
      const [result] = await this.merge(topicFor(announced.table, announced.partition), () => this.source.applyRemoteRows(announced.table, announced.partition, [{ key: first.key, bytes: first.delta }], origin))
      if (result!.status === 'fulfilled') {
        if (result!.value !== 'unchanged') this.counters.deltasApplied++
      } else {
        this.refuse(reasonOf(result!.reason), `the row announced for ${announced.table}/${quote(announced.partition)} by ${origin} refused: ${(result!.reason as Error).message}`)
        return
      }
    }
    if (!known) this.onPartitionLearned?.(announced.table, announced.partition, origin, via)
  }

  /**
   * Who a message is from, as far as gossip can tell: its publisher when signed (an open mesh);
   * in a private mesh, whose gossip is unsigned, the neighbour that passed it on (its changesets
   * carry their author's signature). Null for an unsigned message in an open mesh.
   */
  private senderOf(message: Message, via: string): string | null {
    if (message.type === 'signed') return message.from.toString()
    return this.init.trust === undefined ? null : via
  }

  /** Whether the sender is within its rates; counts and drops its message otherwise. */
  private admit(origin: string, bytes: number): boolean {
    const now = Date.now()
    if (this.messageBuckets.take(origin, now) && this.byteBuckets.take(origin, now, bytes)) return true
    this.refuse(REFUSED.RATE_LIMITED, `gossip from ${origin} over its rate (${this.init.messagesPerSecond ?? GOSSIP_MESSAGES_PER_SECOND} messages or ${this.init.bytesPerSecond ?? GOSSIP_BYTES_PER_SECOND} bytes a second): dropped, anti-entropy will repair it`)
    return false
  }

  private async receive(message: Message, via: string): Promise<void> {
    if (message.topic === PARTITIONS_TOPIC) {
      await this.onAnnouncement(message, via)
      return
    }
    if (!this.subscribed.has(message.topic)) return
    const origin = this.senderOf(message, via)
    if (origin === null) {
      this.refuse(REFUSED.UNSIGNED, `unsigned gossip message on ${quote(message.topic)} dropped`)
      return
    }
    this.counters.messagesIn++
    this.counters.bytesIn += message.data.length
    if (!this.admit(origin, message.data.length)) return
    const data = await this.unpacked(message, origin)
    if (data === null) return
    const kind = gossipKind(data)
    if (this.init.trust !== undefined || kind === 'changeset') {
      await this.receiveChangeset(message.topic, data, kind, origin)
      return
    }
    let batch
    try {
      batch = decodeDeltaBatch(data)
    } catch (error) {
      this.refuse(reasonOf(error), `message from ${origin} on ${quote(message.topic)} refused: ${errorText(error)}`)
      return
    }
    if (topicFor(batch.table, batch.partition) !== message.topic) {
      this.refuse(REFUSED.WRONG_TOPIC, `message from ${origin} names ${batch.table}/${quote(batch.partition)} but came on ${quote(message.topic)}; refused`)
      return
    }
    // All at once, so the store's group commit makes the message one durable batch (awaiting each
    // delta in turn cost one fsync'd write per delta). Deltas of one key still apply in order.
    this.counters.deltasIn += batch.deltas.length
    const results = await this.merge(message.topic, () =>
      this.source.applyRemoteRows(
        batch.table,
        batch.partition,
        batch.deltas.map((d) => ({ key: d.key, bytes: d.delta })),
        origin,
      ),
    )
    let unknownTable = false
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        if (result.value !== 'unchanged') this.counters.deltasApplied++
        return
      }
      const key = batch.deltas[i]!.key
      const reason = reasonOf(result.reason)
      // A table whose definition has not reached this peer yet (its first seconds in the mesh):
      // counted, but no warning; a round with the sender brings the definition and the rows.
      unknownTable ||= reason === 'TABLE_UNKNOWN'
      this.refusals.refuse(reason, `delta for ${batch.table}/${quote(key)} from ${origin} refused: ${(result.reason as Error).message}`, undefined, reason === 'TABLE_UNKNOWN' ? 'debug' : 'warn')
    })
    if (unknownTable) this.onPartitionLearned?.(batch.table, batch.partition, origin, via)
  }

  /**
   * The message inside a deflated one (its inflated size counts against the sender's byte rate
   * too, so deflate does not widen what one origin can make this peer parse); a plain message as
   * it is. Null when refused. Messages of a topic come out in the order they came in.
   */
  private async unpacked(message: Message, origin: string): Promise<Uint8Array | null> {
    const deflated = gossipKind(message.data) === 'deflated'
    if (!deflated && !this.receiving.busy(message.topic)) return message.data
    try {
      const data = await this.receiving.run(message.topic, () => (deflated ? unpackGossip(message.data) : message.data))
      if (deflated && !this.byteBuckets.take(origin, Date.now(), Math.max(0, data.length - message.data.length))) {
        this.refuse(REFUSED.RATE_LIMITED, `gossip from ${origin} over its byte rate once inflated: dropped, anti-entropy will repair it`)
        return null
      }
      return data
    } catch (error) {
      this.refuse(reasonOf(error), `message from ${origin} on ${quote(message.topic)} refused: ${errorText(error)}`)
      return null
    }
  }

  private async receiveChangeset(topic: string, data: Uint8Array, kind: GossipKind, origin: string): Promise<void> {
    const trust = this.init.trust
    if (trust === undefined) {
      this.refuse('NOT_PRIVATE', `changeset from ${origin} on ${quote(topic)} dropped: this peer is in an open mesh`)
      return
    }
    if (kind !== 'changeset') {
      this.refuse('FORBIDDEN', `gossip from ${origin} on ${quote(topic)} refused: a private mesh takes signed changesets only`)
      return
    }
    let bytes: Uint8Array
    try {
      bytes = decodeChangesetMessage(data)
    } catch (error) {
      this.refuse(reasonOf(error), `message from ${origin} on ${quote(topic)} refused: ${errorText(error)}`)
      return
    }
    this.counters.deltasIn++
    try {
      const { changeset, changed } = await this.merge(topic, () => trust.changesets.take(bytes, origin))
      if (topicFor(changeset.table, changeset.partition) !== topic) {
        // Taken (it is signed and allowed wherever it came), but a peer misrouting it is noted.
        this.refuse(REFUSED.WRONG_TOPIC, `changeset of ${changeset.table}/${quote(changeset.partition)} from ${origin} came on ${quote(topic)}`)
      }
      if (changed) this.counters.deltasApplied++
    } catch (error) {
      this.refuse(reasonOf(error), `changeset from ${origin} on ${quote(topic)} refused: ${errorText(error)}`)
    }
  }

  private refuse(reason: string, message: string): void {
    this.refusals.refuse(reason, message)
  }
}
