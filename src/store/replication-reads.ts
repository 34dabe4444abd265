import { LEAF_COUNT, leafOf, type DigestTreeLike } from '../table/digest-tree.js'
import { partitionId } from '../table/ids.js'
import type { RowDocument } from '../table/row.js'
import type { ResolvedSchema } from '../table/schema.js'
import type { StoreCore } from './core.js'
import { bucketKey, decodeRecord, leafName, partitionPrefix, prefixEnd, rowKey, SEP } from './layout.js'

/*
 * What anti-entropy reads from a store: digest trees, the rows of digest leaves, pages of whole
 * rows in (leaf, key) order, and per-row versions and deltas. Rows travel as stored (encoded
 * documents), so serving a peer decodes nothing unless a delta is asked for.
 */

/** Bucket keys read per rowRange call before the byte budget is applied. */
const RANGE_KEYS_PER_READ = 2048

export interface RangeRow {
  leaf: number
  key: string
  doc: Uint8Array
}

export interface RangeCursor {
  leaf: number
  key: string
}

export function digestTree(core: StoreCore, table: string, partition: string): Promise<DigestTreeLike> {
  const pid = partitionId(table, partition)
  return core.digests.tree(pid, async () => {
    const prefix = `${pid}${SEP}`
    const leaves: Array<[number, Uint8Array]> = []
    for await (const [k, v] of core.levels.leaves.iterator({ gte: prefix, lt: prefixEnd(prefix) })) leaves.push([parseInt(k.slice(prefix.length), 16), v])
    return leaves
  })
}

/** A row listed in a digest leaf: its key and its contribution to the leaf. */
export interface LeafRow {
  leaf: number
  key: string
  rowHash: Uint8Array
}

/**
 * An iterator costs about as much as reading this many bucket entries: leaves that close together
 * (in expected entries between them) are read by one iterator over the run, the rest skipped.
 */
const ENTRIES_PER_ITERATOR = 32

/** Row keys and their leaf contributions in these digest leaves, in (leaf, key) order. */
export async function leafRows(core: StoreCore, table: string, partition: string, leaves: readonly number[]): Promise<LeafRow[]> {
  const wanted = [...new Set(leaves)].sort((a, b) => a - b)
  if (wanted.length === 0) return []
  const perLeaf = Math.max(1, core.digests.rowCount(table, partition)) / LEAF_COUNT
  const maxGap = Math.max(1, Math.floor(ENTRIES_PER_ITERATOR / perLeaf))
  const runs: Array<[number, number]> = []
  for (const leaf of wanted) {
    const last = runs[runs.length - 1]
    if (last !== undefined && leaf - last[1] <= maxGap) last[1] = leaf
    else runs.push([leaf, leaf])
  }
  const keep = new Set(wanted)
  const prefix = partitionPrefix(table, partition)
  const keyAt = prefix.length + leafName(0).length + SEP.length
  const out: LeafRow[] = []
  for (const [first, last] of runs) {
    const end = last + 1 >= LEAF_COUNT ? prefixEnd(prefix) : `${prefix}${leafName(last + 1)}${SEP}`
    for await (const [k, v] of core.levels.buckets.iterator({ gte: `${prefix}${leafName(first)}${SEP}`, lt: end })) {
      const leaf = parseInt(k.slice(prefix.length, keyAt - SEP.length), 16)
      if (keep.has(leaf)) out.push({ leaf, key: k.slice(keyAt), rowHash: v })
    }
  }
  return out
}

/** Each row's contribution to its digest leaf (null: not held here), from the bucket index. */
export async function rowHashes(core: StoreCore, table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
  if (keys.length === 0) return []
  const values = await core.levels.buckets.getMany(keys.map((key) => bucketKey(table, partition, leafOf(key), key)))
  return values.map((v) => v ?? null)
}

/**
 * Rows of leaves [fromLeaf, toLeaf) in (leaf, key) order, after `after`, as stored (whole encoded
 * documents), up to about `maxBytes` (at least one row). For anti-entropy's range transfers
 * (initial load): the walk follows the bucket index, so a resumed walk starts where it stopped.
 */
export async function rowRange(
  core: StoreCore,
  table: string,
  partition: string,
  fromLeaf: number,
  toLeaf: number,
  after: RangeCursor | null,
  maxBytes: number,
): Promise<{ rows: RangeRow[]; next: RangeCursor | null }> {
  const prefix = partitionPrefix(table, partition)
  const range = after === null ? { gte: `${prefix}${leafName(fromLeaf)}${SEP}` } : { gt: bucketKey(table, partition, after.leaf, after.key) }
  const end = toLeaf >= LEAF_COUNT ? prefixEnd(prefix) : `${prefix}${leafName(toLeaf)}${SEP}`
  const keys: RangeCursor[] = []
  let more = false
  const iterator = core.levels.buckets.keys({ ...range, lt: end })
  try {
    // Rows are ~150 B; read keys in slices so maxBytes is met without reading far past it.
    for await (const k of iterator) {
      const rest = k.slice(prefix.length)
      keys.push({ leaf: parseInt(rest.slice(0, 4), 16), key: rest.slice(5) })
      if (keys.length >= RANGE_KEYS_PER_READ) {
        more = true
        break
      }
    }
  } finally {
    await iterator.close()
  }
  const rows: RangeRow[] = []
  let bytes = 0
  let last: RangeCursor | null = null
  const values = await core.levels.rows.getMany(keys.map((k) => rowKey(table, partition, k.key)))
  for (let i = 0; i < keys.length; i++) {
    const value = values[i]
    const doc = value === undefined ? null : decodeRecord(value, keys[i]!.key).doc
    if (doc !== null && rows.length > 0 && bytes + doc.length > maxBytes) {
      more = true
      break
    }
    last = keys[i]!
    // A bucket entry without its row cannot be committed (one batch writes both); skip defensively.
    if (doc === null) continue
    rows.push({ ...keys[i]!, doc: doc.slice() })
    bytes += doc.length
  }
  return { rows, next: more ? last : null }
}

/** Stored documents of several rows of one partition (null where absent), in one read. */
export async function encodedRows(core: StoreCore, table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
  const values = await core.levels.rows.getMany(keys.map((k) => rowKey(table, partition, k)))
  return values.map((v, i) => (v === undefined ? null : decodeRecord(v, keys[i]!).doc.slice()))
}

/** A row's version, what a replica at `since` lacks of it, and whether it holds all that replica has. */
export interface RowSince {
  version: Uint8Array
  delta: Uint8Array | null
  /** True when the replica at `since` certainly lacks nothing of this row's (RowDocument.holdsAll). */
  holdsAll: boolean
}

/**
 * For anti-entropy of rows both replicas hold, for each item: this replica's version and, against
 * `since` (when given), what a replica there lacks (null: nothing); null for a row not stored
 * here. Rows not in memory are read in one LevelDB call.
 */
export async function rowsSince(
  core: StoreCore,
  schema: ResolvedSchema,
  partition: string,
  items: ReadonlyArray<{ key: string; since: Uint8Array | null }>,
): Promise<Array<RowSince | null>> {
  const answer = (doc: RowDocument, since: Uint8Array | null): RowSince => ({
    version: doc.version(),
    delta: since === null ? null : doc.deltaSince(since),
    holdsAll: since !== null && doc.holdsAll(since),
  })
  const out: Array<RowSince | null> = new Array(items.length).fill(null)
  const ids = items.map((item) => rowKey(schema.name, partition, item.key))
  const unread: number[] = []
  ids.forEach((id, i) => {
    // A live cached row answers without decoding (it is the committed state unless a write is in flight).
    const cached = core.inFlight.has(id) ? undefined : core.cache.get(id)
    if (cached !== undefined) out[i] = answer(cached.doc, items[i]!.since)
    else unread.push(i)
  })
  if (unread.length === 0) return out
  const stored = await core.levels.rows.getMany(unread.map((i) => ids[i]!))
  unread.forEach((i, j) => {
    const bytes = stored[j]
    if (bytes === undefined) return
    const doc = core.decodeDoc(schema, items[i]!.key, ids[i]!, decodeRecord(bytes, ids[i]!).doc)
    try {
      out[i] = answer(doc, items[i]!.since)
    } finally {
      doc.dispose()
    }
  })
  return out
}
