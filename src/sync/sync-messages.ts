// Over 400 lines on purpose: every request and response of one protocol, encoded and validated
// side by side, so a change to a message is made in one place.
import { decode, encode } from 'cborg'
import { DIGEST_BYTES, MAX_KEY_BYTES, MAX_ROW_BYTES, NAME_PATTERN } from '../constants.js'
import { ProtocolError } from '../errors.js'
import { LEAF_COUNT, TREE_FANOUT } from '../table/digest-tree.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { utf8Length } from '../table/hash.js'
import { MAX_CHANGESET_BYTES } from '../trust/changeset.js'
import { MAX_DOCUMENT_BYTES } from '../trust/documents.js'
import { FEED_EPOCH_PATTERN } from '../store/change-feed.js'
import type { Carries } from './carries.js'
import { shown } from '../validation.js'



/*
 * The anti-entropy protocol (/shoal/sync/1.0.0): the initiator sends requests, the responder
 * answers each with one response, in order, over one stream. Every frame is a CBOR array
 * [version, type, …fields], length-prefixed on the wire, so a receiver rejects another version or
 * an unknown type before looking further. Row-heavy fields are arrays, not maps: keys would cost
 * more bytes than hashes.
 *
 * Pure: encoding and validation only; no streams, no store.
 */

export const SYNC_PROTOCOL = '/shoal/sync/1.0.0'
/** The same messages, each frame behind a flag byte saying whether it is deflated (sync/frame-compression.ts). Preferred when both sides speak it. */
export const SYNC_PROTOCOL_DEFLATE = '/shoal/sync/1.1.0'
/**
 * Deflated frames (as 1.1.0) and the change feed: hello carries feed positions, and `changes` /
 * `settle` reconcile a partition by what changed since the last round (store/change-feed.ts).
 */
export const SYNC_PROTOCOL_FEED = '/shoal/sync/1.2.0'
/**
 * 1.2.0's messages in plain frames (no flag byte, as 1.0.0): what a peer with `deflate: false`
 * speaks, so that turning compression off does not also turn off the change feed.
 */
export const SYNC_PROTOCOL_FEED_PLAIN = '/shoal/sync/1.2.0-plain'
/** What a peer dials and serves, preferred first. */
export const SYNC_PROTOCOLS = [SYNC_PROTOCOL_FEED, SYNC_PROTOCOL_FEED_PLAIN, SYNC_PROTOCOL_DEFLATE, SYNC_PROTOCOL]
/** What a peer that does not deflate (`deflate: false`) dials and serves, preferred first. */
export const SYNC_PROTOCOLS_PLAIN = [SYNC_PROTOCOL_FEED_PLAIN, SYNC_PROTOCOL]

/** Whether a sync protocol's frames sit behind a deflate flag byte (sync/frame-compression.ts). */
export function deflatedProtocol(protocol: string): boolean {
  return protocol === SYNC_PROTOCOL_DEFLATE || protocol === SYNC_PROTOCOL_FEED
}

/** Whether a sync protocol carries the change feed (hello's feed positions, `changes`, `settle`). */
export function feedProtocol(protocol: string): boolean {
  return protocol === SYNC_PROTOCOL_FEED || protocol === SYNC_PROTOCOL_FEED_PLAIN
}
export const SYNC_VERSION = 1
/**
 * Largest frame sent or accepted. A row may be 1 MiB, so a frame must hold one; libp2p resets
 * streams on reads over 4 MB, so frames stay well under that and transfers are paged.
 */
export const MAX_FRAME_BYTES = MAX_ROW_BYTES + 64 * 1024
/** Hash bytes compared below the root: a false match on 8 bytes has probability 2^-64. */
export const NODE_HASH_BYTES = 8
/** Most tree nodes or leaves named in one request (answers stay ~64 KiB). */
export const MAX_NODES_PER_REQUEST = 512
/** Most rows named in one fetch request. */
export const MAX_KEYS_PER_REQUEST = 512
/**
 * Partition roots in one hello or roots answer (~50 B each): the rest are paged with `roots`
 * requests, so a peer holding any number of partitions still fits in frames.
 */
export const MAX_ROOTS_PER_FRAME = 1000


export interface PartitionRoot {
  table: string
  partition: string
  root: Uint8Array
  /** Live rows (for progress estimates only). */
  rows: number
}

/** A position in a (leaf, key)-ordered walk of a partition's rows. */
export interface RangeCursor {
  leaf: number
  key: string
}

/** Where a paged list of partition roots goes on: after this (table, partition). */
export interface RootsCursor {
  table: string
  partition: string
}

/** Which changesets of one author a replica holds in a partition (private meshes, docs/trust.md). */
export interface AuthorRanges {
  author: string
  /** Sorted, disjoint, inclusive sequence ranges. */
  ranges: Array<[number, number]>
}

/** Authors listed in one clock answer at most. */
export const MAX_CLOCK_AUTHORS = 10_000
/** Ranges listed per author at most (a peer with more gaps lists the first ones; the rest follow in later rounds). */
export const MAX_CLOCK_RANGES = 1000
/** Changesets in one frame at most. */
export const MAX_CHANGESETS_PER_FRAME = 4096

export interface RowBytes {
  key: string
  bytes: Uint8Array
}

/** Keys listed in one `changes` request or answer at most (each side's changed rows). */
export const MAX_FEED_KEYS = 4096

/**
 * The change feed in hello (protocol 1.2.0), aligned with the roots of the same message: each
 * partition's feed position here and, in the answer, the asker's position the responder is known
 * to hold (null: none known).
 */
export interface HelloFeed {
  epoch: string
  seqs: number[]
  have?: Array<number | null>
}

export type FeedStatus = 'ok' | 'unknown' | 'too-many'

export type SyncRequest =
  /** `roots`: the first page of the asker's partitions (the answer says whether there are more). */
  | { type: 'hello'; carries: Carries; roots: PartitionRoot[]; next: RootsCursor | null; feed?: HelloFeed }
  /** The next page of the responder's partition roots, after `after`. */
  | { type: 'roots'; after: RootsCursor }
  /** For each node index at `level`, its TREE_FANOUT children's hashes (NODE_HASH_BYTES each). */
  | { type: 'children'; table: string; partition: string; level: number; nodes: number[] }
  /** Keys and (truncated) row hashes of the rows in these leaves. */
  | { type: 'leaves'; table: string; partition: string; leaves: number[] }
  /** Whole rows in leaves [from, to), after `after`, up to about `maxBytes`. */
  | { type: 'range'; table: string; partition: string; from: number; to: number; after: RangeCursor | null; maxBytes: number }
  /** Rows by key: with a version, only what a replica at that version lacks; without, the whole row. */
  | { type: 'fetch'; table: string; partition: string; items: Array<{ key: string; version: Uint8Array | null }> }
  /** Rows (whole or deltas) for the responder to merge. */
  | { type: 'push'; table: string; partition: string; rows: RowBytes[] }
  /** Private meshes: which changesets of the partition the responder holds. */
  | { type: 'clock'; table: string; partition: string }
  /** Private meshes: the responder's changesets of `author` within `ranges`, about `maxBytes`. */
  | { type: 'changesets'; table: string; partition: string; author: string; ranges: Array<[number, number]>; maxBytes: number }
  /** Private meshes: signed changesets for the responder to check and merge. */
  /** Changesets the asker holds and the peer lacks; `admission`: their author's, so a peer that has not met the author can check them. */
  | { type: 'offer'; table: string; partition: string; changesets: Uint8Array[]; admission: Uint8Array | null }
  /** Private meshes: the responder's copy of a member's signed admission (to check changesets it relays). */
  | { type: 'admission'; peer: string }
  /**
   * The change feed: the keys the responder changed after its position `after` (of feed `epoch`),
   * at most `limit`, and `keys` (the asker's changed rows), each with the responder's row hash.
   */
  | { type: 'changes'; table: string; partition: string; epoch: string; after: number; limit: number; keys: string[] }
  /** After a `changes` exchange: the asker's root and feed position; the responder answers with its own. */
  | { type: 'settle'; table: string; partition: string; root: Uint8Array; epoch: string; seq: number }

export type SyncResponse =
  | { type: 'hello'; carries: Carries; roots: PartitionRoot[]; next: RootsCursor | null; feed?: HelloFeed }
  | { type: 'roots'; roots: PartitionRoot[]; next: RootsCursor | null }
  | { type: 'children'; hashes: Uint8Array }
  | { type: 'leaves'; rows: Array<{ leaf: number; key: string; hash: Uint8Array }> }
  | { type: 'range'; rows: RowBytes[]; next: RangeCursor | null }
  /**
   * bytes null: the responder has nothing the asker lacks (or no such row). version: the
   * responder's, for the asker to send back what the responder lacks; null when it certainly
   * lacks nothing (or has no such row, or was asked for the whole row).
   */
  | { type: 'fetch'; rows: Array<{ key: string; bytes: Uint8Array | null; version: Uint8Array | null }> }
  | { type: 'push'; applied: number; refused: number }
  | { type: 'clock'; authors: AuthorRanges[] }
  /** next: the sequence number to ask from to go on, or null when everything asked for was sent. */
  | { type: 'changesets'; changesets: Uint8Array[]; next: number | null }
  | { type: 'offer'; applied: number; refused: number }
  | { type: 'admission'; admission: Uint8Array | null }
  /** status 'ok': `rows` lists the changed keys and the asked ones (hash null: no such row here), as of position `seq`. */
  | { type: 'changes'; status: FeedStatus; seq: number; rows: Array<{ key: string; hash: Uint8Array | null }> }
  | { type: 'settle'; root: Uint8Array; seq: number }
  | { type: 'error'; code: string; message: string }

// ---- encoding -----------------------------------------------------------------------------------

function cursor(c: RangeCursor | null): unknown {
  return c === null ? null : [c.leaf, c.key]
}

function rootsCursor(c: RootsCursor | null): unknown {
  return c === null ? null : [c.table, c.partition]
}

function encodeRoots(roots: readonly PartitionRoot[]): unknown[] {
  return roots.map((p) => [p.table, p.partition, p.root, p.rows])
}

function encodeHello(r: { carries: Carries; roots: readonly PartitionRoot[]; next: RootsCursor | null; feed?: HelloFeed }): Uint8Array {
  const fields = [SYNC_VERSION, 'hello', r.carries, encodeRoots(r.roots), rootsCursor(r.next)]
  if (r.feed !== undefined) fields.push(r.feed.have === undefined ? [r.feed.epoch, r.feed.seqs] : [r.feed.epoch, r.feed.seqs, r.feed.have])
  return encode(fields)
}

export function encodeRequest(r: SyncRequest): Uint8Array {
  switch (r.type) {
    case 'hello':
      return encodeHello(r)
    case 'roots':
      return encode([SYNC_VERSION, 'roots', rootsCursor(r.after)])
    case 'children':
      return encode([SYNC_VERSION, 'children', r.table, r.partition, r.level, r.nodes])
    case 'leaves':
      return encode([SYNC_VERSION, 'leaves', r.table, r.partition, r.leaves])
    case 'range':
      return encode([SYNC_VERSION, 'range', r.table, r.partition, r.from, r.to, cursor(r.after), r.maxBytes])
    case 'fetch':
      return encode([SYNC_VERSION, 'fetch', r.table, r.partition, r.items.map((i) => [i.key, i.version])])
    case 'push':
      return encode([SYNC_VERSION, 'push', r.table, r.partition, r.rows.map((x) => [x.key, x.bytes])])
    case 'clock':
      return encode([SYNC_VERSION, 'clock', r.table, r.partition])
    case 'changesets':
      return encode([SYNC_VERSION, 'changesets', r.table, r.partition, r.author, r.ranges, r.maxBytes])
    case 'offer':
      return encode([SYNC_VERSION, 'offer', r.table, r.partition, r.changesets, r.admission])
    case 'admission':
      return encode([SYNC_VERSION, 'admission', r.peer])
    case 'changes':
      return encode([SYNC_VERSION, 'changes', r.table, r.partition, r.epoch, r.after, r.limit, r.keys])
    case 'settle':
      return encode([SYNC_VERSION, 'settle', r.table, r.partition, r.root, r.epoch, r.seq])
  }
}

export function encodeResponse(r: SyncResponse): Uint8Array {
  switch (r.type) {
    case 'hello':
      return encodeHello(r)
    case 'roots':
      return encode([SYNC_VERSION, 'roots', encodeRoots(r.roots), rootsCursor(r.next)])
    case 'children':
      return encode([SYNC_VERSION, 'children', r.hashes])
    case 'leaves':
      return encode([SYNC_VERSION, 'leaves', r.rows.map((x) => [x.leaf, x.key, x.hash])])
    case 'range':
      return encode([SYNC_VERSION, 'range', r.rows.map((x) => [x.key, x.bytes]), cursor(r.next)])
    case 'fetch':
      return encode([SYNC_VERSION, 'fetch', r.rows.map((x) => [x.key, x.bytes, x.version])])
    case 'push':
      return encode([SYNC_VERSION, 'push', r.applied, r.refused])
    case 'clock':
      return encode([SYNC_VERSION, 'clock', r.authors.map((a) => [a.author, a.ranges])])
    case 'changesets':
      return encode([SYNC_VERSION, 'changesets', r.changesets, r.next])
    case 'offer':
      return encode([SYNC_VERSION, 'offer', r.applied, r.refused])
    case 'admission':
      return encode([SYNC_VERSION, 'admission', r.admission])
    case 'changes':
      return encode([SYNC_VERSION, 'changes', r.status, r.seq, r.rows.map((x) => [x.key, x.hash])])
    case 'settle':
      return encode([SYNC_VERSION, 'settle', r.root, r.seq])
    case 'error':
      return encode([SYNC_VERSION, 'error', r.code, r.message])
  }
}

// ---- decoding and validation -----------------------------------------------------------------

function frame(bytes: Uint8Array, what: string): unknown[] {
  if (bytes.length > MAX_FRAME_BYTES) throw new ProtocolError(`sync ${what} of ${bytes.length} bytes is over the ${MAX_FRAME_BYTES}-byte limit`)
  let value: unknown
  try {
    value = decode(bytes)
  } catch (error) {
    throw new ProtocolError(`sync ${what} is not valid CBOR`, { cause: error })
  }
  if (!Array.isArray(value) || value.length < 2) throw new ProtocolError(`sync ${what} is not a [version, type, …] array`)
  if (value[0] !== SYNC_VERSION) throw new ProtocolError(`sync ${what} has protocol version ${shown(value[0])}; this peer speaks ${SYNC_VERSION}`)
  return value
}

function arity(v: unknown[], n: number, what: string): void {
  if (v.length !== n) throw new ProtocolError(`sync ${what} '${String(v[1])}' must have ${n} fields, has ${v.length}`)
}

function table(v: unknown): string {
  if (typeof v !== 'string' || !(NAME_PATTERN.test(v) || v === CATALOG_TABLE)) throw new ProtocolError(`invalid table name ${shown(v)}`)
  return v
}

function text(v: unknown, what: string, allowEmpty: boolean): string {
  if (typeof v !== 'string' || (!allowEmpty && v === '') || v.includes('\u0000') || utf8Length(v) > MAX_KEY_BYTES) {
    throw new ProtocolError(`invalid ${what} ${shown(v)?.slice(0, 80)}`)
  }
  return v
}

const partition = (v: unknown): string => text(v, 'partition', true)
const key = (v: unknown): string => text(v, 'row key', false)

function int(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ProtocolError(`invalid ${what} ${shown(v)} (must be an integer ${min}…${max})`)
  return v
}

function bytes(v: unknown, what: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) throw new ProtocolError(`invalid ${what}: must be ${min}…${max} bytes`)
  return v
}

function list(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${what} must be an array`)
  if (v.length > max) throw new ProtocolError(`${what} has ${v.length} entries, over the limit of ${max}`)
  return v
}

function tuple(v: unknown, n: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length !== n) throw new ProtocolError(`${what} must be a ${n}-element array`)
  return v
}

const MAX_PARTITIONS = 100_000
const MAX_ROWS_PER_FRAME = 100_000
const MAX_VERSION_BYTES = 64 * 1024

function carries(v: unknown): Carries {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new ProtocolError('carries must be a map of table → [partitions]')
  const out: Record<string, string[]> = {}
  for (const [t, listed] of Object.entries(v as Record<string, unknown>)) {
    table(t)
    // '*' (every partition) is what leaving the table out says; older peers sent it.
    if (listed !== '*') out[t] = list(listed, `carries of '${t}'`, MAX_PARTITIONS).map(partition)
  }
  return out
}

function roots(v: unknown): PartitionRoot[] {
  return list(v, 'roots', MAX_ROOTS_PER_FRAME).map((entry) => {
    const [t, p, root, rows] = tuple(entry, 4, 'a root entry')
    return { table: table(t), partition: partition(p), root: bytes(root, 'digest root', DIGEST_BYTES, DIGEST_BYTES), rows: int(rows, 'row count', 0, Number.MAX_SAFE_INTEGER) }
  })
}

function decodeRootsCursor(v: unknown): RootsCursor | null {
  if (v === null) return null
  const [t, p] = tuple(v, 2, 'a roots cursor')
  return { table: table(t), partition: partition(p) }
}

function rangeCursor(v: unknown): RangeCursor | null {
  if (v === null) return null
  const [leaf, k] = tuple(v, 2, 'a range cursor')
  return { leaf: int(leaf, 'leaf', 0, LEAF_COUNT - 1), key: key(k) }
}

function rowList(v: unknown): RowBytes[] {
  return list(v, 'rows', MAX_ROWS_PER_FRAME).map((entry) => {
    const [k, b] = tuple(entry, 2, 'a row entry')
    return { key: key(k), bytes: bytes(b, 'row bytes', 1, MAX_ROW_BYTES) }
  })
}

function author(v: unknown): string {
  // A libp2p peer id as text (base58btc Ed25519: 52 characters); checked for real by the signature.
  if (typeof v !== 'string' || !/^[1-9A-HJ-NP-Za-km-z]{40,64}$/.test(v)) throw new ProtocolError(`invalid author ${JSON.stringify(v)?.slice(0, 80)} (must be a peer id)`)
  return v
}

function seqRanges(v: unknown): Array<[number, number]> {
  let last = 0
  return list(v, 'sequence ranges', MAX_CLOCK_RANGES).map((entry) => {
    const [a, b] = tuple(entry, 2, 'a sequence range')
    const from = int(a, 'sequence number', last + 1, Number.MAX_SAFE_INTEGER)
    const to = int(b, 'sequence number', from, Number.MAX_SAFE_INTEGER)
    last = to
    return [from, to]
  })
}

function changesetList(v: unknown): Uint8Array[] {
  return list(v, 'changesets', MAX_CHANGESETS_PER_FRAME).map((b) => bytes(b, 'changeset', 1, MAX_CHANGESET_BYTES))
}

function epoch(v: unknown): string {
  if (typeof v !== 'string' || !FEED_EPOCH_PATTERN.test(v)) throw new ProtocolError(`invalid change-feed epoch ${shown(v)?.slice(0, 80)} (must be 16 hex digits)`)
  return v
}

const position = (v: unknown): number => int(v, 'change-feed position', 0, Number.MAX_SAFE_INTEGER)

/** hello's optional 6th field, checked against the roots it goes with. */
function helloFeed(v: unknown, roots: number, answer: boolean): HelloFeed {
  const fields = tuple(v, answer ? 3 : 2, `the change feed of a hello ${answer ? 'answer' : 'request'}`)
  const seqs = list(fields[1], 'feed positions', MAX_ROOTS_PER_FRAME).map(position)
  if (seqs.length !== roots) throw new ProtocolError(`hello lists ${seqs.length} feed positions for ${roots} partitions`)
  const feed: HelloFeed = { epoch: epoch(fields[0]), seqs }
  if (answer) {
    feed.have = list(fields[2], 'held feed positions', MAX_ROOTS_PER_FRAME).map((h) => (h === null ? null : position(h)))
    if (feed.have.length !== roots) throw new ProtocolError(`hello lists ${feed.have.length} held feed positions for ${roots} partitions`)
  }
  return feed
}

function decodeHello(v: unknown[], what: 'request' | 'response'): { type: 'hello'; carries: Carries; roots: PartitionRoot[]; next: RootsCursor | null; feed?: HelloFeed } {
  if (v.length !== 5 && v.length !== 6) arity(v, 5, what)
  const hello = { type: 'hello' as const, carries: carries(v[2]), roots: roots(v[3]), next: decodeRootsCursor(v[4]) }
  return v.length === 6 ? { ...hello, feed: helloFeed(v[5], hello.roots.length, what === 'response') } : hello
}

/** Decodes a request from a peer; throws ProtocolError naming what is wrong. */
export function decodeRequest(data: Uint8Array): SyncRequest {
  const v = frame(data, 'request')
  switch (v[1]) {
    case 'hello':
      return decodeHello(v, 'request')
    case 'roots': {
      arity(v, 3, 'request')
      const after = decodeRootsCursor(v[2])
      if (after === null) throw new ProtocolError('a roots request needs the cursor to go on after')
      return { type: 'roots', after }
    }
    case 'children': {
      arity(v, 6, 'request')
      const level = int(v[4], 'tree level', 0, 3)
      const max = TREE_FANOUT ** level - 1
      return { type: 'children', table: table(v[2]), partition: partition(v[3]), level, nodes: list(v[5], 'nodes', MAX_NODES_PER_REQUEST).map((n) => int(n, 'node index', 0, max)) }
    }
    case 'leaves':
      arity(v, 5, 'request')
      return { type: 'leaves', table: table(v[2]), partition: partition(v[3]), leaves: list(v[4], 'leaves', MAX_NODES_PER_REQUEST).map((n) => int(n, 'leaf index', 0, LEAF_COUNT - 1)) }
    case 'range': {
      arity(v, 8, 'request')
      const from = int(v[4], 'range start', 0, LEAF_COUNT - 1)
      const to = int(v[5], 'range end', from + 1, LEAF_COUNT)
      return { type: 'range', table: table(v[2]), partition: partition(v[3]), from, to, after: rangeCursor(v[6]), maxBytes: int(v[7], 'maxBytes', 1, MAX_FRAME_BYTES) }
    }
    case 'fetch':
      arity(v, 5, 'request')
      return {
        type: 'fetch',
        table: table(v[2]),
        partition: partition(v[3]),
        items: list(v[4], 'fetch items', MAX_KEYS_PER_REQUEST).map((entry) => {
          const [k, version] = tuple(entry, 2, 'a fetch item')
          return { key: key(k), version: version === null ? null : bytes(version, 'version', 0, MAX_VERSION_BYTES) }
        }),
      }
    case 'push':
      arity(v, 5, 'request')
      return { type: 'push', table: table(v[2]), partition: partition(v[3]), rows: rowList(v[4]) }
    case 'clock':
      arity(v, 4, 'request')
      return { type: 'clock', table: table(v[2]), partition: partition(v[3]) }
    case 'changesets':
      arity(v, 7, 'request')
      return { type: 'changesets', table: table(v[2]), partition: partition(v[3]), author: author(v[4]), ranges: seqRanges(v[5]), maxBytes: int(v[6], 'maxBytes', 1, MAX_FRAME_BYTES) }
    case 'offer':
      arity(v, 6, 'request')
      return { type: 'offer', table: table(v[2]), partition: partition(v[3]), changesets: changesetList(v[4]), admission: v[5] === null ? null : bytes(v[5], 'admission', 1, MAX_DOCUMENT_BYTES) }
    case 'admission':
      arity(v, 3, 'request')
      return { type: 'admission', peer: author(v[2]) }
    case 'changes':
      arity(v, 8, 'request')
      return {
        type: 'changes',
        table: table(v[2]),
        partition: partition(v[3]),
        epoch: epoch(v[4]),
        after: position(v[5]),
        limit: int(v[6], 'limit', 1, MAX_FEED_KEYS),
        keys: list(v[7], 'changed keys', MAX_FEED_KEYS).map(key),
      }
    case 'settle':
      arity(v, 7, 'request')
      return { type: 'settle', table: table(v[2]), partition: partition(v[3]), root: bytes(v[4], 'digest root', DIGEST_BYTES, DIGEST_BYTES), epoch: epoch(v[5]), seq: position(v[6]) }
    default:
      throw new ProtocolError(`sync request type ${shown(v[1])} is unknown`)
  }
}

/** Decodes a response to `request`; a response of another type than asked is a protocol error. */
export function decodeResponse(data: Uint8Array, request: SyncRequest['type']): SyncResponse {
  const v = frame(data, 'response')
  if (v[1] === 'error') {
    arity(v, 4, 'response')
    if (typeof v[2] !== 'string' || typeof v[3] !== 'string') throw new ProtocolError('sync error response needs a code and a message')
    return { type: 'error', code: v[2].slice(0, 64), message: v[3].slice(0, 1000) }
  }
  if (v[1] !== request) throw new ProtocolError(`sync response of type ${shown(v[1])} to a '${request}' request`)
  switch (request) {
    case 'hello':
      return decodeHello(v, 'response')
    case 'roots':
      arity(v, 4, 'response')
      return { type: 'roots', roots: roots(v[2]), next: decodeRootsCursor(v[3]) }
    case 'children':
      arity(v, 3, 'response')
      return { type: 'children', hashes: bytes(v[2], 'child hashes', 0, MAX_NODES_PER_REQUEST * TREE_FANOUT * NODE_HASH_BYTES) }
    case 'leaves':
      arity(v, 3, 'response')
      return {
        type: 'leaves',
        rows: list(v[2], 'leaf rows', MAX_ROWS_PER_FRAME).map((entry) => {
          const [leaf, k, hash] = tuple(entry, 3, 'a leaf row')
          return { leaf: int(leaf, 'leaf index', 0, LEAF_COUNT - 1), key: key(k), hash: bytes(hash, 'row hash', NODE_HASH_BYTES, NODE_HASH_BYTES) }
        }),
      }
    case 'range':
      arity(v, 4, 'response')
      return { type: 'range', rows: rowList(v[2]), next: rangeCursor(v[3]) }
    case 'fetch':
      arity(v, 3, 'response')
      return {
        type: 'fetch',
        rows: list(v[2], 'fetched rows', MAX_KEYS_PER_REQUEST).map((entry) => {
          const [k, b, version] = tuple(entry, 3, 'a fetched row')
          return { key: key(k), bytes: b === null ? null : bytes(b, 'row bytes', 1, MAX_ROW_BYTES), version: version === null ? null : bytes(version, 'version', 0, MAX_VERSION_BYTES) }
        }),
      }
    case 'push':
      arity(v, 4, 'response')
      return { type: 'push', applied: int(v[2], 'applied count', 0, MAX_ROWS_PER_FRAME), refused: int(v[3], 'refused count', 0, MAX_ROWS_PER_FRAME) }
    case 'clock':
      arity(v, 3, 'response')
      return {
        type: 'clock',
        authors: list(v[2], 'clock authors', MAX_CLOCK_AUTHORS).map((entry) => {
          const [a, r] = tuple(entry, 2, 'a clock entry')
          return { author: author(a), ranges: seqRanges(r) }
        }),
      }
    case 'changesets':
      arity(v, 4, 'response')
      return { type: 'changesets', changesets: changesetList(v[2]), next: v[3] === null ? null : int(v[3], 'next sequence number', 1, Number.MAX_SAFE_INTEGER) }
    case 'offer':
      arity(v, 4, 'response')
      return { type: 'offer', applied: int(v[2], 'applied count', 0, MAX_CHANGESETS_PER_FRAME), refused: int(v[3], 'refused count', 0, MAX_CHANGESETS_PER_FRAME) }
    case 'admission':
      arity(v, 3, 'response')
      return { type: 'admission', admission: v[2] === null ? null : bytes(v[2], 'admission', 1, MAX_DOCUMENT_BYTES) }
    case 'changes': {
      arity(v, 5, 'response')
      if (v[2] !== 'ok' && v[2] !== 'unknown' && v[2] !== 'too-many') throw new ProtocolError(`invalid change-feed status ${shown(v[2])} (must be ok, unknown or too-many)`)
      return {
        type: 'changes',
        status: v[2],
        seq: position(v[3]),
        rows: list(v[4], 'changed rows', 2 * MAX_FEED_KEYS).map((entry) => {
          const [k, hash] = tuple(entry, 2, 'a changed row')
          return { key: key(k), hash: hash === null ? null : bytes(hash, 'row hash', NODE_HASH_BYTES, NODE_HASH_BYTES) }
        }),
      }
    }
    case 'settle':
      arity(v, 4, 'response')
      return { type: 'settle', root: bytes(v[2], 'digest root', DIGEST_BYTES, DIGEST_BYTES), seq: position(v[3]) }
  }
}
