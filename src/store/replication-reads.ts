import { LEAF_COUNT, type DigestTreeLike } from '../table/digest-tree.js'
import { partitionId } from '../table/ids.js'
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

/** Row keys and their leaf contributions in one digest leaf. */
export async function leafRows(core: StoreCore, table: string, partition: string, leaf: number): Promise<Array<{ key: string; rowHash: Uint8Array }>> {
  const prefix = `${partitionPrefix(table, partition)}${leafName(leaf)}${SEP}`
  const out: Array<{ key: string; rowHash: Uint8Array }> = []
  for await (const [k, v] of core.levels.buckets.iterator({ gte: prefix, lt: prefixEnd(prefix) })) out.push({ key: k.slice(prefix.length), rowHash: v })
  return out
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

/**
 * For anti-entropy of a row both replicas hold: this replica's version, and (if `since` is given)
 * what a replica at `since` lacks (null: nothing). Null if the row is not stored here.
 */
export async function rowSince(
  core: StoreCore,
  schema: ResolvedSchema,
  partition: string,
  key: string,
  since: Uint8Array | null,
): Promise<{ version: Uint8Array; delta: Uint8Array | null } | null> {
  const id = rowKey(schema.name, partition, key)
  // A live cached row answers without decoding (it is the committed state unless a write is in flight).
  const cached = core.inFlight.has(id) ? undefined : core.cache.get(id)
  if (cached !== undefined) return { version: cached.doc.version(), delta: since === null ? null : cached.doc.deltaSince(since) }
  const bytes = await core.levels.rows.get(id)
  if (bytes === undefined) return null
  const doc = core.decodeDoc(schema, key, id, decodeRecord(bytes, id).doc)
  try {
    return { version: doc.version(), delta: since === null ? null : doc.deltaSince(since) }
  } finally {
    doc.dispose()
  }
}
