import { sha256 } from './sha256.js'
import { DIGEST_BYTES, DIGEST_TREE_DEPTH, DIGEST_TREE_FANOUT_BITS } from '../constants.js'
import { equalBytes, isZeroBytes as isZero, xorBytes, xorInto } from './hash.js'
import { ID_SEP } from './ids.js'

/*
 * A digest tree per (table, partition), Riak "Tictac" style: a leaf bucket's hash is the XOR of
 * hash(rowKey ‖ rowDigest) over its rows, and every inner node is the XOR of its children. XOR
 * makes each update O(depth) with no re-scan: XOR out the row's old contribution and XOR in the
 * new one. Two replicas hold the same rows iff (with overwhelming probability) their roots are
 * equal; where they differ, anti-entropy descends only into the differing children.
 */

export const TREE_FANOUT = 1 << DIGEST_TREE_FANOUT_BITS
export const LEAF_COUNT = TREE_FANOUT ** DIGEST_TREE_DEPTH
const encoder = new TextEncoder()

/**
 * The leaf bucket a row key falls in. Only the spread matters (not secrecy), so a cheap FNV-1a
 * over the key's UTF-16 code units with a final avalanche stands in for a cryptographic hash.
 */
export function leafOf(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) >>> (32 - DIGEST_TREE_FANOUT_BITS * DIGEST_TREE_DEPTH)
}

/** Reused input buffer of rowHash (hashed at every commit of every row; grown when too small). */
let scratch = new Uint8Array(1024)

/** A row's contribution to its leaf: sha256(key ‖ 0 ‖ canonical state), truncated. */
export function rowHash(key: string, canonicalState: Uint8Array): Uint8Array {
  // A UTF-16 code unit takes at most 3 UTF-8 bytes.
  const most = key.length * 3 + 1 + canonicalState.length
  if (scratch.length < most) scratch = new Uint8Array(most * 2)
  const written = encoder.encodeInto(key, scratch).written
  scratch[written] = 0
  scratch.set(canonicalState, written + 1)
  return sha256(scratch.subarray(0, written + 1 + canonicalState.length)).subarray(0, DIGEST_BYTES)
}

export const ZERO_DIGEST: Uint8Array = new Uint8Array(DIGEST_BYTES)

export class DigestTree implements DigestTreeLike {
  /** levels[d] holds TREE_FANOUT^d nodes of DIGEST_BYTES each; levels[DEPTH] are the leaves. */
  private readonly levels: Uint8Array[]

  constructor() {
    this.levels = []
    for (let d = 0; d <= DIGEST_TREE_DEPTH; d++) this.levels.push(new Uint8Array(TREE_FANOUT ** d * DIGEST_BYTES))
  }

  /** Rebuilds a tree from its stored leaves (the inner levels are derived, never stored). */
  static fromLeaves(leaves: Iterable<readonly [number, Uint8Array]>): DigestTree {
    const tree = new DigestTree()
    for (const [leaf, value] of leaves) tree.apply(leaf, value)
    return tree
  }

  /** XORs `change` into a leaf and all its ancestors. */
  apply(leaf: number, change: Uint8Array): void {
    if (isZero(change)) return
    let index = leaf
    for (let d = DIGEST_TREE_DEPTH; d >= 0; d--) {
      xorInto(this.levels[d]!, index * DIGEST_BYTES, change)
      index >>>= DIGEST_TREE_FANOUT_BITS
    }
  }

  root(): Uint8Array {
    return this.node(0, 0)
  }

  node(level: number, index: number): Uint8Array {
    if (level < 0 || level > DIGEST_TREE_DEPTH || index < 0 || index >= TREE_FANOUT ** level) {
      throw new RangeError(`no digest tree node ${index} at level ${level}`)
    }
    return this.levels[level]!.slice(index * DIGEST_BYTES, (index + 1) * DIGEST_BYTES)
  }

  /** The TREE_FANOUT children of an inner node, concatenated. */
  children(level: number, index: number): Uint8Array {
    if (level < 0 || level >= DIGEST_TREE_DEPTH) throw new RangeError(`level ${level} has no children`)
    const first = index * TREE_FANOUT
    return this.levels[level + 1]!.slice(first * DIGEST_BYTES, (first + TREE_FANOUT) * DIGEST_BYTES)
  }

  leaf(index: number): Uint8Array {
    return this.node(DIGEST_TREE_DEPTH, index)
  }

  isEmpty(): boolean {
    return isZero(this.levels[0]!)
  }
}

/**
 * The same tree, storing only non-zero nodes: for replicas holding few rows per partition (the
 * simulator's thousand in-memory peers), where DigestTree's dense 1.1 MB per partition would not fit.
 */
export class SparseDigestTree implements DigestTreeLike {
  /** Key: level * LEAF_COUNT + index (unique because index < TREE_FANOUT^level ≤ LEAF_COUNT). */
  private readonly nodes = new Map<number, Uint8Array>()

  apply(leaf: number, change: Uint8Array): void {
    if (isZero(change)) return
    let index = leaf
    for (let d = DIGEST_TREE_DEPTH; d >= 0; d--) {
      const key = d * LEAF_COUNT + index
      let node = this.nodes.get(key)
      if (node === undefined) this.nodes.set(key, (node = new Uint8Array(DIGEST_BYTES)))
      xorInto(node, 0, change)
      if (isZero(node)) this.nodes.delete(key)
      index >>>= DIGEST_TREE_FANOUT_BITS
    }
  }

  root(): Uint8Array {
    return this.node(0, 0)
  }

  node(level: number, index: number): Uint8Array {
    if (level < 0 || level > DIGEST_TREE_DEPTH || index < 0 || index >= TREE_FANOUT ** level) {
      throw new RangeError(`no digest tree node ${index} at level ${level}`)
    }
    return (this.nodes.get(level * LEAF_COUNT + index) ?? new Uint8Array(DIGEST_BYTES)).slice()
  }

  children(level: number, index: number): Uint8Array {
    if (level < 0 || level >= DIGEST_TREE_DEPTH) throw new RangeError(`level ${level} has no children`)
    const out = new Uint8Array(TREE_FANOUT * DIGEST_BYTES)
    for (let c = 0; c < TREE_FANOUT; c++) {
      const node = this.nodes.get((level + 1) * LEAF_COUNT + index * TREE_FANOUT + c)
      if (node !== undefined) out.set(node, c * DIGEST_BYTES)
    }
    return out
  }

  isEmpty(): boolean {
    return !this.nodes.has(0)
  }
}

/** The ways a digest tree is read and moved, dense or sparse. */
export interface DigestTreeLike {
  apply(leaf: number, change: Uint8Array): void
  root(): Uint8Array
  node(level: number, index: number): Uint8Array
  children(level: number, index: number): Uint8Array
  isEmpty(): boolean
}

export interface LeafChange {
  /** partitionId(table, partition) */
  partition: string
  leaf: number
  /** XOR to apply to the leaf (and its ancestors). */
  change: Uint8Array
}

/**
 * What a set of row changes does to the digest trees and live-row counts of their partitions:
 * the store computes it for a batch before writing it (leaves, roots and counts go into the same
 * atomic LevelDB batch as the rows), the in-memory replica of the simulator applies it at once.
 * Partitions are partitionId strings.
 */
export class DigestChanges {
  private readonly leafChanges = new Map<string, LeafChange>()
  private readonly liveChanges = new Map<string, number>()

  /**
   * A row's digest contribution moved from `before` (null: the row is new here) to `after`, and
   * its liveness from `wasAlive` to `isAlive`. A new row records its partition even when its live
   * count does not move (a row created deleted), so the partition is listed.
   */
  row(partition: string, key: string, before: Uint8Array | null, after: Uint8Array, wasAlive: boolean, isAlive: boolean): void {
    if (before === null || !equalBytes(before, after)) {
      const leaf = leafOf(key)
      const id = `${partition}${ID_SEP}${leaf}`
      const change = xorBytes(before ?? ZERO_DIGEST, after)
      const entry = this.leafChanges.get(id)
      if (entry === undefined) this.leafChanges.set(id, { partition, leaf, change })
      else xorInto(entry.change, 0, change)
    }
    const live = (isAlive ? 1 : 0) - (wasAlive ? 1 : 0)
    if (live !== 0 || before === null) this.liveChanges.set(partition, (this.liveChanges.get(partition) ?? 0) + live)
  }

  get isEmpty(): boolean {
    return this.leafChanges.size === 0 && this.liveChanges.size === 0
  }

  leaves(): Iterable<LeafChange> {
    return this.leafChanges.values()
  }

  /** Per partition, the XOR of its leaf changes: what its root moves by. */
  roots(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>()
    for (const { partition, change } of this.leafChanges.values()) {
      const root = out.get(partition)
      if (root === undefined) out.set(partition, change.slice())
      else xorInto(root, 0, change)
    }
    return out
  }

  /** Per partition, the change of its live-row count (0 entries for partitions that only gained rows). */
  counts(): ReadonlyMap<string, number> {
    return this.liveChanges
  }
}
