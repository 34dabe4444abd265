import { decode, encode } from 'cborg'
import { MAX_DELTA_BYTES, MAX_KEY_BYTES, NAME_PATTERN } from '../constants.js'
import { ProtocolError } from '../errors.js'
import { utf8Length } from '../table/hash.js'
import { shown } from '../validation.js'



/*
 * Gossip messages (the fast path): one message carries the deltas of several rows of one
 * (table, partition), coalesced over a few milliseconds. Encoded as a CBOR array
 * [version, 'deltas', table, partition, [[key, delta], …]] so a receiver can reject another
 * version before looking further. Pure: no timers or sockets; the caller injects scheduling.
 */

export const GOSSIP_VERSION = 1
/** Largest gossip message sent or accepted; bigger batches are split. */
export const MAX_GOSSIP_BYTES = 512 * 1024
/** Changes made within this window go out as one message. */
export const DEFAULT_COALESCE_MS = 5

export interface RowDelta {
  key: string
  delta: Uint8Array
}

export interface DeltaBatch {
  table: string
  partition: string
  deltas: RowDelta[]
}

/** The gossipsub topic of one (table, partition); '' is the partition of unpartitioned tables. */
export function topicFor(table: string, partition: string): string {
  return `shoal/${GOSSIP_VERSION}/${table}/${encodeURIComponent(partition)}`
}

export function encodeDeltaBatch(batch: DeltaBatch): Uint8Array {
  return encode([GOSSIP_VERSION, 'deltas', batch.table, batch.partition, batch.deltas.map((d) => [d.key, d.delta])])
}

/** A gossip message's CBOR value, within the size limit; ProtocolError otherwise. */
function decodeMessage(bytes: Uint8Array): unknown {
  if (bytes.length > MAX_GOSSIP_BYTES) throw new ProtocolError(`gossip message of ${bytes.length} bytes is over the ${MAX_GOSSIP_BYTES}-byte limit`)
  let value: unknown
  try {
    value = decode(bytes)
  } catch (error) {
    throw new ProtocolError('gossip message is not valid CBOR', { cause: error })
  }
  return value
}

/** Decodes and checks a gossip message; throws ProtocolError saying what is wrong. */
export function decodeDeltaBatch(bytes: Uint8Array): DeltaBatch {
  const value = decodeMessage(bytes)
  if (!Array.isArray(value) || value.length !== 5) throw new ProtocolError('gossip message is not a [version, type, table, partition, deltas] array')
  const [version, type, table, partition, deltas] = value as unknown[]
  if (version !== GOSSIP_VERSION) throw new ProtocolError(`gossip message has protocol version ${shown(version)}; this peer speaks ${GOSSIP_VERSION}`)
  if (type !== 'deltas') throw new ProtocolError(`gossip message type ${shown(type)} is unknown`)
  if (typeof table !== 'string' || !(NAME_PATTERN.test(table) || table === '_tables')) throw new ProtocolError(`gossip message names an invalid table ${shown(table)}`)
  if (typeof partition !== 'string' || utf8Length(partition) > MAX_KEY_BYTES) throw new ProtocolError('gossip message has an invalid partition')
  if (!Array.isArray(deltas) || deltas.length === 0) throw new ProtocolError('gossip message carries no deltas')
  const out: RowDelta[] = []
  for (const entry of deltas as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new ProtocolError('gossip delta is not a [key, delta] pair')
    const [key, delta] = entry as unknown[]
    if (typeof key !== 'string' || key === '' || key.includes('\u0000') || utf8Length(key) > MAX_KEY_BYTES) throw new ProtocolError('gossip delta has an invalid row key')
    if (!(delta instanceof Uint8Array) || delta.length === 0 || delta.length > MAX_DELTA_BYTES) throw new ProtocolError(`gossip delta for row '${key}' is not a delta of 1…${MAX_DELTA_BYTES} bytes`)
    out.push({ key, delta })
  }
  return { table, partition, deltas: out }
}

/**
 * Topic on which a peer announces a partition it starts writing to, with the first row it wrote
 * there: a peer carrying the whole table merges that row, and once it has passed the row checks,
 * listens to the partition's topic (a peer's word alone creates no topic).
 */
/** The (table, partition) of a partition topic, or null for any other topic. */
export function parseTopic(topic: string): { table: string; partition: string } | null {
  const prefix = `shoal/${GOSSIP_VERSION}/`
  if (!topic.startsWith(prefix)) return null
  const rest = topic.slice(prefix.length)
  const cut = rest.indexOf('/')
  if (cut <= 0) return null
  try {
    return { table: rest.slice(0, cut), partition: decodeURIComponent(rest.slice(cut + 1)) }
  } catch {
    return null
  }
}

/**
 * Private meshes: a gossip message is one signed changeset, as its author made it (relayed
 * unchanged, so every receiver checks the author's signature and rights itself).
 */
export function encodeChangesetMessage(changeset: Uint8Array): Uint8Array {
  return encode([GOSSIP_VERSION, 'changeset', changeset])
}

export type GossipKind = 'deltas' | 'changeset' | 'deflated' | 'unknown'

/** Which kind a gossip message on a partition topic is, from its first bytes (the full decode checks it all). */
export function gossipKind(bytes: Uint8Array): GossipKind {
  // CBOR: an array header, the version (a small uint), then the type as a short text string
  // (0x60 + its length).
  if (bytes.length < 3 || bytes[1] !== GOSSIP_VERSION) return 'unknown'
  const length = bytes[2]! - 0x60
  if (length < 1 || length > 23 || bytes.length < 3 + length) return 'unknown'
  const type = new TextDecoder().decode(bytes.subarray(3, 3 + length))
  return type === 'deltas' || type === 'changeset' || type === 'deflated' ? type : 'unknown'
}

/**
 * A deltas or changeset message, raw-deflated: [version, 'deflated', bytes]. Sent only on topics
 * whose every subscriber also listens on DEFLATE_TOPIC (gossip-deflate.ts), so a peer of an older
 * version is sent plain messages.
 */
export function encodeDeflatedMessage(packed: Uint8Array): Uint8Array {
  return encode([GOSSIP_VERSION, 'deflated', packed])
}

/** The bytes of a [version, type, bytes] message (a changeset, a deflated message); ProtocolError otherwise. */
function decodeBytesMessage(bytes: Uint8Array, type: 'changeset' | 'deflated'): Uint8Array {
  const value = decodeMessage(bytes)
  if (!Array.isArray(value) || value.length !== 3 || value[0] !== GOSSIP_VERSION || value[1] !== type || !(value[2] instanceof Uint8Array) || value[2].length === 0) {
    throw new ProtocolError(`gossip message is not a [version, "${type}", bytes] array`)
  }
  return value[2]
}

/** The deflated bytes of a [version, 'deflated', bytes] message; ProtocolError otherwise. */
export function decodeDeflatedMessage(bytes: Uint8Array): Uint8Array {
  return decodeBytesMessage(bytes, 'deflated')
}

/**
 * A topic no message is sent on: subscribing to it tells the mesh that this peer reads deflated
 * gossip (subscriptions reach every connected peer at once, in browsers too).
 */
export const DEFLATE_TOPIC = `shoal/${GOSSIP_VERSION}/_deflate`

export function decodeChangesetMessage(bytes: Uint8Array): Uint8Array {
  return decodeBytesMessage(bytes, 'changeset')
}

export const PARTITIONS_TOPIC = `shoal/${GOSSIP_VERSION}/_partitions`

export interface PartitionAnnouncement {
  table: string
  partition: string
  /** The first row written there (its delta), or null when it is too large to go along. */
  first: RowDelta | null
  /**
   * The announcing peer's id, when gossip is not signed (a private mesh): whom to ask for the
   * partition. A claim, not a proof; the worst a member can do with it is send a round elsewhere.
   */
  by?: string
}

/** Longer than any peer id's text (an Ed25519 one is 52 characters). */
const MAX_PEER_ID_CHARS = 128

export function encodePartitionAnnouncement(a: PartitionAnnouncement): Uint8Array {
  const fields = [GOSSIP_VERSION, 'partition', a.table, a.partition, a.first === null ? null : [a.first.key, a.first.delta]]
  return encode(a.by === undefined ? fields : [...fields, a.by])
}

export function decodePartitionAnnouncement(bytes: Uint8Array): PartitionAnnouncement {
  if (bytes.length > MAX_GOSSIP_BYTES) throw new ProtocolError(`partition announcement of ${bytes.length} bytes is over the ${MAX_GOSSIP_BYTES}-byte limit`)
  let value: unknown
  try {
    value = decode(bytes)
  } catch (error) {
    throw new ProtocolError('partition announcement is not valid CBOR', { cause: error })
  }
  if (!Array.isArray(value) || (value.length !== 5 && value.length !== 6)) throw new ProtocolError('partition announcement is not a [version, type, table, partition, first row, (by)] array')
  const [version, type, table, partition, first, by] = value as unknown[]
  if (version !== GOSSIP_VERSION) throw new ProtocolError(`partition announcement has protocol version ${shown(version)}; this peer speaks ${GOSSIP_VERSION}`)
  if (type !== 'partition') throw new ProtocolError(`announcement type ${shown(type)} is unknown`)
  if (typeof table !== 'string' || !NAME_PATTERN.test(table)) throw new ProtocolError(`partition announcement names an invalid table ${shown(table)}`)
  if (typeof partition !== 'string' || partition.includes('\u0000') || utf8Length(partition) > MAX_KEY_BYTES) throw new ProtocolError('partition announcement has an invalid partition')
  if (by !== undefined && (typeof by !== 'string' || by === '' || by.length > MAX_PEER_ID_CHARS)) throw new ProtocolError('partition announcement names an invalid announcing peer')
  const from = by === undefined ? {} : { by }
  if (first === null) return { table, partition, first: null, ...from }
  if (!Array.isArray(first) || first.length !== 2) throw new ProtocolError('partition announcement: the first row is not a [key, delta] pair')
  const [key, delta] = first as unknown[]
  if (typeof key !== 'string' || key === '' || key.includes('\u0000') || utf8Length(key) > MAX_KEY_BYTES) throw new ProtocolError('partition announcement: the first row has an invalid key')
  if (!(delta instanceof Uint8Array) || delta.length === 0 || delta.length > MAX_DELTA_BYTES) throw new ProtocolError(`partition announcement: the first row is not a delta of 1…${MAX_DELTA_BYTES} bytes`)
  return { table, partition, first: { key, delta }, ...from }
}

/** CBOR overhead allowances (upper bounds) when estimating a batch's encoded size. */
const ENTRY_OVERHEAD_BYTES = 16
const HEADER_OVERHEAD_BYTES = 32

export interface CoalescerInit {
  /** Sends one encoded message on a topic. */
  publish: (topic: string, message: Uint8Array) => void
  /** Runs `fn` after `ms`; returns a cancel function (injected so tests and simulations drive time). */
  schedule: (fn: () => void, ms: number) => () => void
  coalesceMs?: number
  maxMessageBytes?: number
}

interface Pending {
  table: string
  partition: string
  deltas: RowDelta[]
  bytes: number
}

/**
 * Coalesces local changes per (table, partition), leading edge first: a change on a quiet topic
 * goes out at once (an isolated write pays no coalescing delay), and opens a window during which
 * further changes are held and then sent together as one message; a window that sent something
 * opens another. A message that would outgrow the size cap goes out at once. A delta too large for
 * any message is refused (anti-entropy carries the row).
 */
export class GossipCoalescer {
  private readonly pending = new Map<string, Pending>()
  /** Topics inside a window: topic → cancel of the timer that ends it. */
  private readonly windows = new Map<string, () => void>()
  private readonly coalesceMs: number
  private readonly maxBytes: number

  constructor(private readonly init: CoalescerInit) {
    this.coalesceMs = init.coalesceMs ?? DEFAULT_COALESCE_MS
    this.maxBytes = init.maxMessageBytes ?? MAX_GOSSIP_BYTES
  }

  /** Queues one row's delta; returns false if it is too large to gossip. */
  add(table: string, partition: string, key: string, delta: Uint8Array): boolean {
    const size = delta.length + utf8Length(key) + ENTRY_OVERHEAD_BYTES
    const headroom = utf8Length(table) + utf8Length(partition) + HEADER_OVERHEAD_BYTES
    if (size + headroom > this.maxBytes) return false
    const topic = topicFor(table, partition)
    let p = this.pending.get(topic)
    if (p !== undefined && p.bytes + size > this.maxBytes) {
      this.send(topic)
      p = undefined
    }
    if (p === undefined) {
      p = { table, partition, deltas: [], bytes: headroom }
      this.pending.set(topic, p)
    }
    p.deltas.push({ key, delta })
    p.bytes += size
    if (!this.windows.has(topic)) {
      this.send(topic)
      this.openWindow(topic)
    }
    return true
  }

  /** Sends everything queued now (on shutdown). */
  flush(): void {
    for (const topic of [...this.pending.keys()]) this.send(topic)
    for (const cancel of this.windows.values()) cancel()
    this.windows.clear()
  }

  private openWindow(topic: string): void {
    this.windows.set(
      topic,
      this.init.schedule(() => {
        this.windows.delete(topic)
        if (this.pending.has(topic)) {
          this.send(topic)
          this.openWindow(topic)
        }
      }, this.coalesceMs),
    )
  }

  private send(topic: string): void {
    const p = this.pending.get(topic)
    if (p === undefined) return
    this.pending.delete(topic)
    this.init.publish(topic, encodeDeltaBatch({ table: p.table, partition: p.partition, deltas: p.deltas }))
  }
}
