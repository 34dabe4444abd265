import type { Message } from '@libp2p/gossipsub'
import type { ShoalNode } from '../net/node.js'
import type { Shoal } from '../shoal.js'
import type { ChangeEvent } from '../store/store.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { decodeDeltaBatch, DEFAULT_COALESCE_MS, GossipCoalescer, topicFor } from '../sync/gossip.js'

/**
 * Partitions a peer listens to beyond those it already holds rows of: table → partitions ('' for
 * an unpartitioned table). Unpartitioned tables and the schema catalog are always carried.
 */
export interface Carries {
  readonly [table: string]: readonly string[] | undefined
}

export interface GossipReplicatorInit {
  coalesceMs?: number
  /** Partitions to subscribe to beyond those with local rows (e.g. a store peer's own store). */
  carries?: Carries
  /** Where refusals of peers' messages are reported (default console.warn). */
  log?: (message: string) => void
}

export interface GossipCounters {
  messagesOut: number
  messagesIn: number
  deltasOut: number
  deltasIn: number
  deltasApplied: number
  bytesOut: number
  bytesIn: number
  refused: number
}

/**
 * The fast path of replication: every committed local change is published at once (coalesced
 * over a few ms) on the gossipsub topic of its (table, partition); messages from peers are
 * merged with applyRemoteDelta. Anything refused is logged and counted, never thrown: a
 * misbehaving peer cannot stop this one. What gossip misses is left to anti-entropy.
 */
export class GossipReplicator {
  readonly counters: GossipCounters = { messagesOut: 0, messagesIn: 0, deltasOut: 0, deltasIn: 0, deltasApplied: 0, bytesOut: 0, bytesIn: 0, refused: 0 }
  private readonly coalescer: GossipCoalescer
  private readonly subscribed = new Set<string>()
  private readonly log: (message: string) => void
  private unsubscribeStore: (() => void) | null = null
  private readonly onMessage = (event: CustomEvent<Message>): void => {
    void this.receive(event.detail)
  }

  constructor(
    private readonly db: Shoal,
    private readonly node: ShoalNode,
    private readonly init: GossipReplicatorInit = {},
  ) {
    this.log = init.log ?? ((message) => console.warn(`shoal: ${message}`))
    this.coalescer = new GossipCoalescer({
      coalesceMs: init.coalesceMs ?? DEFAULT_COALESCE_MS,
      schedule: (fn, ms) => {
        const timer = setTimeout(fn, ms)
        return () => clearTimeout(timer)
      },
      publish: (topic, message) => {
        this.counters.messagesOut++
        this.counters.bytesOut += message.length
        this.node.pubsub.publish(topic, message).catch((error: unknown) => this.log(`publishing on ${topic} failed: ${(error as Error).message}`))
      },
    })
  }

  start(): void {
    this.node.pubsub.addEventListener('message', this.onMessage)
    this.subscribe(CATALOG_TABLE, '')
    for (const [table, partitions] of Object.entries(this.init.carries ?? {})) for (const p of partitions ?? []) this.subscribe(table, p)
    for (const schema of this.db.tables()) {
      if (schema.partitionBy === null) this.subscribe(schema.name, '')
      for (const p of this.db.store.partitions(schema.name)) this.subscribe(schema.name, p.partition)
    }
    this.unsubscribeStore = this.db.subscribe((event) => this.onChange(event))
  }

  /** Publishes what is queued, then leaves the topics. */
  stop(): void {
    this.unsubscribeStore?.()
    this.unsubscribeStore = null
    this.coalescer.flush()
    this.node.pubsub.removeEventListener('message', this.onMessage)
    for (const topic of this.subscribed) this.node.pubsub.unsubscribe(topic)
    this.subscribed.clear()
  }

  /** Topics this peer listens on. */
  topics(): string[] {
    return [...this.subscribed]
  }

  private subscribe(table: string, partition: string): void {
    const topic = topicFor(table, partition)
    if (this.subscribed.has(topic)) return
    this.subscribed.add(topic)
    this.node.pubsub.subscribe(topic)
  }

  private onChange(event: ChangeEvent): void {
    // A table defined here, or learned from a peer, is carried from then on.
    if (event.table === CATALOG_TABLE && event.row !== null) {
      const carried = this.init.carries?.[event.key]
      if (carried === undefined && event.row.partitionBy === null) this.subscribe(event.key, '')
    }
    if (event.origin !== 'local') return
    this.subscribe(event.table, event.partition)
    if (this.coalescer.add(event.table, event.partition, event.key, event.delta)) this.counters.deltasOut++
  }

  private async receive(message: Message): Promise<void> {
    if (!this.subscribed.has(message.topic)) return
    if (message.type !== 'signed') {
      this.refuse(`unsigned gossip message on ${message.topic} dropped`)
      return
    }
    this.counters.messagesIn++
    this.counters.bytesIn += message.data.length
    let batch
    try {
      batch = decodeDeltaBatch(message.data)
    } catch (error) {
      this.refuse(`message from ${message.from.toString()} on ${message.topic} refused: ${(error as Error).message}`)
      return
    }
    if (topicFor(batch.table, batch.partition) !== message.topic) {
      this.refuse(`message from ${message.from.toString()} names ${batch.table}/${batch.partition} but came on ${message.topic}; refused`)
      return
    }
    const origin = message.from.toString()
    for (const { key, delta } of batch.deltas) {
      this.counters.deltasIn++
      try {
        const result = await this.db.applyRemoteDelta(batch.table, batch.partition, key, delta, origin)
        if (result !== 'unchanged') this.counters.deltasApplied++
      } catch (error) {
        this.refuse(`delta for ${batch.table}/${key} from ${origin} refused: ${(error as Error).message}`)
      }
    }
  }

  private refuse(message: string): void {
    this.counters.refused++
    this.log(message)
  }
}
