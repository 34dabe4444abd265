import { ValidationError } from '../errors.js'
import type { RowOp } from '../table/row.js'
import type { ResolvedSchema } from '../table/schema.js'
import type { Bookmark } from './layout.js'
import type { LocalWriteResult } from './write-batch.js'

/*
 * Atomic batches with a bookmark (Store.writeAtomic, Shoal.applyBatch; used by the SQL bridge).
 *
 * Many local writes and one named bookmark are committed in ONE LevelDB batch: after a crash
 * either all of them are on disk or none is. The SQL bridge records in the bookmark which
 * captured SQL changes the batch applied, so a change is applied exactly once even when the peer
 * is killed between the store write and the deletion of the captured change (a counter increment
 * applied twice would be a lost write). The writes join the ordinary group commit (they may
 * share their LevelDB batch with other writers' jobs, never split from each other). A write
 * refused on its own (RowNotFoundError, ValidationError, PartitionError…) is reported in its
 * result and does not stop the others; a failed disk write rejects the whole batch, bookmark
 * included, and nothing of it is stored.
 */

/** One write of an atomic batch (validated by the caller, as for writeLocal). */
export interface AtomicWrite {
  schema: ResolvedSchema
  key: string
  /** Known partition, or null to look it up by key. */
  partition: string | null
  /** The partition a put names in its values (used when the row does not exist yet). */
  createPartition: string | null
  op: RowOp
}

export { bookmarkKey, type Bookmark } from './layout.js'

export type AtomicWriteResult = { ok: true; result: LocalWriteResult } | { ok: false; error: unknown }

export interface AtomicOptions {
  bookmark?: Bookmark
  /** Carried into the change events of these writes (ChangeEvent.source). */
  source?: string
}

/** Bookmark names: short printable strings (they are LevelDB keys under meta). */
export const MAX_BOOKMARK_NAME_BYTES = 200
/** A bookmark value is read whole; keep it small (a few KB of ids or digests). */
export const MAX_BOOKMARK_VALUE_BYTES = 1024 * 1024
/** Writes in one atomic batch: one LevelDB batch must stay a bounded amount of memory. */
export const MAX_ATOMIC_WRITES = 4096

const utf8 = new TextEncoder()

/** Throws ValidationError for an oversized batch or a malformed bookmark; nothing is written then. */
export function checkAtomic(writes: readonly AtomicWrite[], bookmark: Bookmark | null): void {
  if (writes.length > MAX_ATOMIC_WRITES) throw new ValidationError(`an atomic batch holds at most ${MAX_ATOMIC_WRITES} writes, got ${writes.length}; split it`)
  if (bookmark === null) return
  if (typeof bookmark.name !== 'string' || bookmark.name === '' || bookmark.name.includes('\u0000') || utf8.encode(bookmark.name).length > MAX_BOOKMARK_NAME_BYTES) {
    throw new ValidationError(`a bookmark name is a non-empty string of at most ${MAX_BOOKMARK_NAME_BYTES} bytes without NUL`)
  }
  if (bookmark.value !== null && (typeof bookmark.value !== 'string' || utf8.encode(bookmark.value).length > MAX_BOOKMARK_VALUE_BYTES)) {
    throw new ValidationError(`a bookmark value is a string of at most ${MAX_BOOKMARK_VALUE_BYTES} bytes, or null`)
  }
}
