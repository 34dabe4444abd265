import type { DigestTreeLike } from '../table/digest-tree.js'
import type { ApplyResult } from '../table/engine.js'
import type { ResolvedSchema } from '../table/schema.js'
import type { Changeset } from '../trust/changeset.js'
import type { FeedAnswer, FeedMark } from './change-feed.js'
import type { ChangesetOutcome } from './changesets.js'
import type { PartitionSummary } from './digest-state.js'
import type { RangeCursor, RangeRow, RowSince, LeafRow } from './replication-reads.js'
import type { ChangeListener, RemoteRow } from './store.js'

/**
 * What replication (gossip, anti-entropy, the simulator's real peers) may do with a store: read
 * schemas, digest trees and rows as stored, merge peers' rows, and follow committed changes.
 * The store provides it; `Shoal.replication()` hands it out. Local writes are not part of it:
 * they go through the table API.
 */
export interface ReplicaSource {
  readonly actor: string
  /** The schema in force (the catalog's own for `_tables`), or undefined. */
  schema(table: string): ResolvedSchema | undefined
  /** User tables. */
  tables(): ResolvedSchema[]
  /** Partitions of a table held here (live or deleted rows), with live counts and digest roots. */
  partitions(table: string): PartitionSummary[]
  /** One partition's live count and digest root as they are now; undefined when none of its rows is held. */
  partition(table: string, partition: string): PartitionSummary | undefined
  holds(table: string, partition: string): boolean
  rowCount(table: string, partition?: string): number
  digestTree(table: string, partition: string): Promise<DigestTreeLike>
  leafRows(table: string, partition: string, leaves: readonly number[]): Promise<LeafRow[]>
  rowRange(table: string, partition: string, fromLeaf: number, toLeaf: number, after: RangeCursor | null, maxBytes: number): Promise<{ rows: RangeRow[]; next: RangeCursor | null }>
  encodedRows(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>>
  rowsSince(schema: ResolvedSchema, partition: string, items: ReadonlyArray<{ key: string; since: Uint8Array | null }>): Promise<Array<RowSince | null>>
  applyRemote(table: string, partition: string, key: string, delta: Uint8Array, origin: string): Promise<ApplyResult>
  applyRemoteRows(table: string, partition: string, rows: readonly RemoteRow[], origin: string): Promise<Array<PromiseSettledResult<ApplyResult>>>
  subscribe(listener: ChangeListener): () => void
  /** The change feed (store/change-feed.ts): this store's feed id, a partition's last position. */
  feedEpoch(): string
  feedSeq(table: string, partition: string): number
  /** Keys of a partition changed after feed position `after`; 'unknown' / 'too-many' send the asker to the digest tree. */
  changedSince(table: string, partition: string, after: number, limit: number): Promise<FeedAnswer>
  /** Each row's digest-leaf contribution (null: not held here). */
  rowHashes(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>>
  /** The feed position of `peer`'s partition whose state this store was seen to hold. */
  feedMark(peer: string, table: string, partition: string): Promise<FeedMark | null>
  setFeedMark(peer: string, table: string, partition: string, mark: FeedMark): Promise<void>
  /** A peer's changeset, signature and author rights checked by the caller (private meshes). */
  applyChangeset(changeset: Changeset, bytes: Uint8Array, origin: string): Promise<ChangesetOutcome>
  /** Which changesets of a partition are logged here: author → held sequence ranges. */
  changesetClock(table: string, partition: string): Array<{ author: string; ranges: Array<[number, number]> }>
  /** Logged changesets of one author in a partition, within `ranges`, about `maxBytes`. */
  readChangesets(table: string, partition: string, author: string, ranges: ReadonlyArray<readonly [number, number]>, maxBytes: number): Promise<{ changesets: Uint8Array[]; next: number | null }>
}
