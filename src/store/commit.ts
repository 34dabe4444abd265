import { DigestChanges, leafOf, ZERO_DIGEST } from '../table/digest-tree.js'
import { equalBytes, isZeroBytes, toHex, xorBytes } from '../table/hash.js'
import { ID_SEP, parsePartitionId, partitionId } from '../table/ids.js'
import type { ResolvedSchema } from '../table/schema.js'
import { logKey, SEQ_PREFIX } from './change-log.js'
import type { PendingLog } from './changesets.js'
import type { StoreCore } from './core.js'
import { bookmarkKey, bucketKey, COUNT_PREFIX, encodeRecord, indexKey, leafKey, ROOT_PREFIX, type Bookmark } from './layout.js'
import type { LiveRow } from './live-row.js'

/** A row a batch changed, ready to be written. */
export interface DirtyRow {
  schema: ResolvedSchema
  partition: string
  key: string
  /** rowKey(table, partition, key) */
  id: string
  live: LiveRow | null
}

type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }

const utf8 = new TextEncoder()

/**
 * Writes the rows a batch changed, with everything that depends on them, in one atomic LevelDB
 * batch: each row's record, its bucket entry and digest leaf when its hash moved, the roots and
 * live counts of its partition, the key index for rows new here, and the change feed's entry. Only after the write is
 * durable do the in-memory views (digest state, key memo, row cache) move.
 *
 * `indexedBefore`: what the key index held before this batch for the keys the batch looked up
 * (every key of a partitioned table a batch creates is among them).
 */
export async function commitRows(
  core: StoreCore,
  dirty: readonly DirtyRow[],
  indexedBefore: ReadonlyMap<string, string | null>,
  bookmarks: readonly Bookmark[] = [],
  /** Changesets (private meshes) logged with the rows they changed. */
  logs: readonly PendingLog[] = [],
  /** This peer's last changeset sequence number per partition, after this batch. */
  ownSeqs: ReadonlyMap<string, number> = new Map(),
): Promise<void> {
  if (dirty.length === 0 && bookmarks.length === 0 && logs.length === 0) return
  // One chained batch on the root database with prefixed keys: abstract-level's per-operation
  // sublevel handling costs ~3x the write itself (measured in bench/README.md), and its array
  // form of batch() is slower still (columns batched writes 13.7k/s against 23.1k chained).
  const ops: BatchOp[] = []
  const changes = new DigestChanges()
  const updates: Array<{ row: DirtyRow; rowHash: Uint8Array; alive: boolean; size: number }> = []
  const indexed = new Map<string, string>()
  const changedKeys = new Map<string, string[]>()
  for (const row of dirty) {
    const live = row.live!
    const rowHash = live.doc.rowHash(row.key)
    const alive = live.doc.alive
    const record = encodeRecord({ alive, rowHash, doc: live.doc.encode() })
    ops.push({ type: 'put', key: core.prefix.rows + row.id, value: record })
    const before = live.rowHash
    if (before === null || !equalBytes(before, rowHash)) {
      ops.push({ type: 'put', key: core.prefix.buckets + bucketKey(row.schema.name, row.partition, leafOf(row.key), row.key), value: rowHash })
    }
    const pid = partitionId(row.schema.name, row.partition)
    changes.row(pid, row.key, before, rowHash, live.alive, alive)
    let keys = changedKeys.get(pid)
    if (keys === undefined) changedKeys.set(pid, (keys = []))
    keys.push(row.key)
    if (before === null && row.schema.partitionBy !== null) {
      const k = indexKey(row.schema.name, row.key)
      if ((indexedBefore.get(k) ?? null) === null && !indexed.has(k)) {
        indexed.set(k, row.partition)
        ops.push({ type: 'put', key: core.prefix.keys + k, value: utf8.encode(row.partition) })
      }
    }
    updates.push({ row, rowHash, alive, size: record.length })
  }
  const leaves = await leafOps(core, changes, ops)
  const feed = await core.feed.append(core.levels.feed, core.prefix, changedKeys, (pid) => core.digests.rowCountOf(pid), ops)
  const next = core.digests.next(changes)
  for (const [pid, root] of next.roots) ops.push({ type: 'put', key: core.prefix.meta + ROOT_PREFIX + pid, value: utf8.encode(toHex(root)) })
  for (const [pid, count] of next.counts) ops.push({ type: 'put', key: core.prefix.meta + COUNT_PREFIX + pid, value: utf8.encode(String(count)) })

  // Bookmarks of atomic batches (atomic.ts) commit with their rows; a later one of a name wins.
  for (const b of bookmarks) {
    const key = core.prefix.meta + bookmarkKey(b.name)
    ops.push(b.value === null ? { type: 'del', key } : { type: 'put', key, value: utf8.encode(b.value) })
  }
  for (const { entry, bytes } of logs) ops.push({ type: 'put', key: core.prefix.changes + logKey(entry.pid, entry.author, entry.seq), value: bytes })
  for (const [pid, seq] of ownSeqs) ops.push({ type: 'put', key: core.prefix.meta + SEQ_PREFIX + pid, value: utf8.encode(String(seq)) })
  const batch = core.db.batch()
  for (const op of ops) {
    if (op.type === 'put') batch.put(op.key, op.value)
    else batch.del(op.key)
  }
  await batch.write({ sync: core.syncWrites } as object)

  // Durable: now the in-memory views may move.
  core.commitSeq++
  core.digests.committed(changes, next)
  core.digests.leavesWritten(leaves)
  core.feed.committed(feed)
  for (const [k, partition] of indexed) core.keyIndex.remember(k, partition)
  if (logs.length > 0) core.changeLog.committed(logs.map((l) => l.entry), ownSeqs)
  for (const { row, rowHash, alive, size } of updates) {
    const live = row.live!
    live.rowHash = rowHash
    live.alive = alive
    live.storedBytes = size
    core.cache.set(row.id, live)
  }
}

/**
 * New values of the leaves a batch changes, added to `ops` and returned: each from the cached tree
 * or the leaf memo where they know it, else read from LevelDB (one getMany for all of those).
 */
async function leafOps(core: StoreCore, changes: DigestChanges, ops: BatchOp[]): Promise<Array<{ partition: string; leaf: number; value: Uint8Array }>> {
  const list = [...changes.leaves()]
  const known = list.map((c) => core.digests.knownLeaf(c.partition, c.leaf))
  const unknown = list.filter((_, i) => known[i] === undefined)
  const stored = unknown.length === 0 ? [] : await core.levels.leaves.getMany(unknown.map((c) => leafKeyOf(c.partition, c.leaf)))
  const storedLeaf = new Map(unknown.map((c, i) => [`${c.partition}${ID_SEP}${c.leaf}`, stored[i]]))
  const out: Array<{ partition: string; leaf: number; value: Uint8Array }> = []
  list.forEach(({ partition, leaf, change }, i) => {
    const current = known[i] ?? storedLeaf.get(`${partition}${ID_SEP}${leaf}`) ?? ZERO_DIGEST
    const value = xorBytes(current, change)
    const key = core.prefix.leaves + leafKeyOf(partition, leaf)
    if (isZeroBytes(value)) ops.push({ type: 'del', key })
    else ops.push({ type: 'put', key, value })
    out.push({ partition, leaf, value })
  })
  return out
}

function leafKeyOf(pid: string, leaf: number): string {
  const { table, partition } = parsePartitionId(pid)
  return leafKey(table, partition, leaf)
}
