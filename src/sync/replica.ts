import { DIGEST_BYTES } from '../constants.js'
import { TREE_FANOUT } from '../table/digest-tree.js'
import type { FeedAnswer, FeedMark } from '../store/change-feed.js'
import type { Carries } from './carries.js'
import { NODE_HASH_BYTES, type AuthorRanges, type PartitionRoot, type RangeCursor, type RootsCursor, type RowBytes } from './sync-messages.js'

/** Told of each row or changeset a replica refuses: why (a ShoalError code or NOT_CARRIED), what, and from which peer. */
export type RefusalSink = (reason: string, message: string, from: string) => void

/**
 * A private mesh's replica (docs/trust.md): signed changesets are the unit of replication, so
 * anti-entropy compares which changesets each side holds and ships the missing ones as they were
 * signed; merged rows never travel. `readable` is the read rule: what a peer may receive.
 */
export interface ChangesetReplica {
  /** May `peer` receive rows of (table, partition)? */
  readable(peer: string, table: string, partition: string): boolean
  /** Which changesets of a partition are held here: author → sequence ranges. */
  clock(table: string, partition: string): AuthorRanges[]
  /** Held changesets of one author within `ranges`, in sequence order, about maxBytes (at least one) and at most MAX_CHANGESETS_PER_FRAME. */
  read(table: string, partition: string, author: string, ranges: ReadonlyArray<readonly [number, number]>, maxBytes: number): Promise<{ changesets: Uint8Array[]; next: number | null }>
  /**
   * Checks (signature, author admitted and allowed to write the partition, deltas its own) and
   * merges changesets from peer `from`. Never throws for a bad changeset: counts it refused.
   */
  apply(table: string, partition: string, changesets: readonly Uint8Array[], from: string): Promise<{ changed: number; refused: number }>
  /** May `author` write (table, partition)? (Its admission known here and the rules allow it.) */
  mayWrite(author: string, table: string, partition: string): boolean
  /** True if a current admission of `peer` is known here (its changesets can be checked). */
  knows(peer: string): boolean
  /** A member's signed admission as known here, or null. */
  admissionOf(peer: string): Uint8Array | null
  /** Takes in a member's admission relayed by a peer; throws (TrustError) if it is not a valid one. */
  learn(admission: Uint8Array): Promise<void>
}

/**
 * A replica that keeps a change feed (store/change-feed.ts): anti-entropy then reconciles a
 * partition by the rows each side changed since the last round between the two, and falls back
 * to the digest tree where that cannot tell (no mark yet, too many changes, roots still differ).
 */
export interface FeedReplica {
  /** This replica's feed id (a data folder started over has another). */
  epoch(): string
  /** A partition's feed position now (read together with its root: both move at commit). */
  seq(table: string, partition: string): number
  /** Keys of a partition changed after position `after`, at most `limit`. */
  changedSince(table: string, partition: string, after: number, limit: number): Promise<FeedAnswer>
  /** Each row's truncated hash (NODE_HASH_BYTES), null for a row not held here. */
  hashes(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>>
  /** The feed position of `peer`'s partition whose state this replica holds (seen as equal roots), or null. */
  mark(peer: string, table: string, partition: string): Promise<FeedMark | null>
  setMark(peer: string, table: string, partition: string, mark: FeedMark): Promise<void>
}

/**
 * What anti-entropy needs from a replica. The reconciler and responder are written against this
 * alone, so the same decisions run over a real store (StoreReplica) or a simulated one.
 */
export interface SyncReplica {
  /** Which partitions this replica receives (sent in hello). */
  carries(): Carries
  /** True if rows of (table, partition) are held here. */
  holds(table: string, partition: string): boolean
  /** Partitions held here (tables known here, catalog included), with full digest roots. */
  roots(): PartitionRoot[]
  /** One partition's root as it is now (undefined: none of its rows held here). */
  partitionRoot(table: string, partition: string): PartitionRoot | undefined
  /** True if rows of this table's schema are known here. */
  knowsTable(table: string): boolean
  /** TREE_FANOUT child hashes (NODE_HASH_BYTES each) per node at `level`, concatenated. */
  children(table: string, partition: string, level: number, nodes: readonly number[]): Promise<Uint8Array>
  /** Keys and truncated row hashes of the rows in these leaves. */
  leafRows(table: string, partition: string, leaves: readonly number[]): Promise<Array<{ leaf: number; key: string; hash: Uint8Array }>>
  /** Whole rows of leaves [from, to) in (leaf, key) order after `after`, about maxBytes; next = where to go on, or null at the end. */
  range(table: string, partition: string, from: number, to: number, after: RangeCursor | null, maxBytes: number): Promise<{ rows: RowBytes[]; next: RangeCursor | null }>
  /**
   * Per key: what a replica at `version` lacks (asked with version null: the whole row), and this
   * replica's version, so the asker can send back what it has that this replica lacks; the
   * version is left out (null) when this replica holds all the asker has (RowDocument.holdsAll).
   */
  fetch(table: string, partition: string, items: ReadonlyArray<{ key: string; version: Uint8Array | null }>): Promise<Array<{ key: string; bytes: Uint8Array | null; version: Uint8Array | null }>>
  /** This replica's version of each row, or null for one it does not hold. */
  versions(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>>
  /** What a replica at `version` lacks of a row (null: nothing, or no such row). */
  deltaSince(table: string, partition: string, key: string, version: Uint8Array): Promise<Uint8Array | null>
  /**
   * Merges rows (whole documents or deltas) from peer `from`. Never throws for a bad row: counts it
   * refused (and reports why to whoever the replica was built to tell). Every row of a partition
   * this replica does not carry is refused.
   */
  apply(table: string, partition: string, rows: readonly RowBytes[], from: string): Promise<{ changed: number; refused: number }>
  /** Set in a private mesh: replicate by changesets (the row requests above are then refused to peers). */
  readonly changesets?: ChangesetReplica
  /** Set where the replica keeps a change feed (open meshes). */
  readonly feed?: FeedReplica
}

/** Partition roots in the order they are paged in: by table, then partition (code unit order). */
export function compareRoots(a: RootsCursor, b: RootsCursor): number {
  if (a.table !== b.table) return a.table < b.table ? -1 : 1
  return a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0
}

/** One page of `roots` (any order) after `after`, at most `limit`; `next` is where the following page starts. */
export function pageOfRoots(roots: readonly PartitionRoot[], after: RootsCursor | null, limit: number): { roots: PartitionRoot[]; next: RootsCursor | null } {
  const sorted = [...roots].sort(compareRoots).filter((r) => after === null || compareRoots(r, after) > 0)
  const page = sorted.slice(0, limit)
  const last = page[page.length - 1]
  return { roots: page, next: sorted.length > limit && last !== undefined ? { table: last.table, partition: last.partition } : null }
}

/** The answer to a `children` request from a digest tree: each child's hash cut to NODE_HASH_BYTES. */
export function truncatedChildren(tree: { children(level: number, index: number): Uint8Array }, level: number, nodes: readonly number[]): Uint8Array {
  const out = new Uint8Array(nodes.length * TREE_FANOUT * NODE_HASH_BYTES)
  nodes.forEach((node, i) => {
    const children = tree.children(level, node)
    for (let c = 0; c < TREE_FANOUT; c++) out.set(children.subarray(c * DIGEST_BYTES, c * DIGEST_BYTES + NODE_HASH_BYTES), (i * TREE_FANOUT + c) * NODE_HASH_BYTES)
  })
  return out
}
