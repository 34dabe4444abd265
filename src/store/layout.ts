import { DIGEST_BYTES } from '../constants.js'
import { StoreCorruptError } from '../errors.js'
import { ID_SEP, partitionId, rowId } from '../table/ids.js'

/*
 * LevelDB layout (sublevels of one database; key parts joined by NUL, which names and keys may
 * not contain):
 *   rows    table␀partition␀key        → RowRecord (format, flags, rowHash, encoded document)
 *   buckets table␀partition␀leaf␀key   → rowHash   (the rows of one digest leaf, for anti-entropy)
 *   leaves  table␀partition␀leaf       → leaf hash (inner tree levels are derived on load)
 *   keys    table␀key                  → partition (partitioned tables: where a key's row lives;
 *                                                   the first creation seen here wins)
 *   meta    'format' | 'actor' | count␀table␀partition | root␀table␀partition → value
 *           bookmark␀name → value (atomic batches, atomic.ts)
 *   feed    table␀partition␀position → the keys a commit changed (change-feed.ts, which also
 *           keeps its positions, epoch and peers' marks in meta)
 * One local change is one atomic batch over all of them.
 */

export const SEP = ID_SEP
const RECORD_FORMAT = 1
const FLAG_ALIVE = 1

/** The on-disk layout version; bumped when it changes incompatibly. */
export const STORE_FORMAT = 1
export const META_FORMAT = 'format'
export const META_ACTOR = 'actor'

export const rowKey = rowId

export function partitionPrefix(table: string, partition: string): string {
  return `${table}${SEP}${partition}${SEP}`
}

export function leafName(leaf: number): string {
  return leaf.toString(16).padStart(4, '0')
}

export function bucketKey(table: string, partition: string, leaf: number, key: string): string {
  return `${table}${SEP}${partition}${SEP}${leafName(leaf)}${SEP}${key}`
}

export function leafKey(table: string, partition: string, leaf: number): string {
  return `${table}${SEP}${partition}${SEP}${leafName(leaf)}`
}

export function indexKey(table: string, key: string): string {
  return `${table}${SEP}${key}`
}

/** meta key of a partition's live-row count (`pid`: partitionId). */
export const COUNT_PREFIX = `count${SEP}`
/** meta key of a partition's digest root, hex. */
export const ROOT_PREFIX = `root${SEP}`
/** Bookmarks written with atomic batches (atomic.ts). */
export const BOOKMARK_PREFIX = `bookmark${SEP}`

/** A named string committed with an atomic batch (atomic.ts); value null removes it. */
export interface Bookmark {
  name: string
  value: string | null
}

/** The meta-sublevel key of a bookmark. */
export function bookmarkKey(name: string): string {
  return BOOKMARK_PREFIX + name
}

export function countKey(table: string, partition: string): string {
  return COUNT_PREFIX + partitionId(table, partition)
}

/** Smallest string greater than every key starting with `prefix` (for range ends). */
export function prefixEnd(prefix: string): string {
  return prefix + '\uffff'
}

export interface RowRecord {
  alive: boolean
  /** The row's contribution to its digest leaf: hash(key ‖ canonical state). */
  rowHash: Uint8Array
  doc: Uint8Array
}

export function encodeRecord(record: RowRecord): Uint8Array {
  const out = new Uint8Array(2 + DIGEST_BYTES + record.doc.length)
  out[0] = RECORD_FORMAT
  out[1] = record.alive ? FLAG_ALIVE : 0
  out.set(record.rowHash, 2)
  out.set(record.doc, 2 + DIGEST_BYTES)
  return out
}

export function decodeRecord(bytes: Uint8Array, where: string): RowRecord {
  if (bytes.length < 2 + DIGEST_BYTES || bytes[0] !== RECORD_FORMAT) {
    throw new StoreCorruptError(`stored row ${where} is not in Shoal's row format (format byte ${bytes[0]}); the data folder is damaged or not Shoal's`)
  }
  return {
    alive: (bytes[1]! & FLAG_ALIVE) !== 0,
    rowHash: bytes.subarray(2, 2 + DIGEST_BYTES),
    doc: bytes.subarray(2 + DIGEST_BYTES),
  }
}
