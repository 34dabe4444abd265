import { DEFAULT_TREE_CACHE_SIZE, LEAF_MEMO_SIZE } from '../constants.js'
import { DigestTree, SparseDigestTree, ZERO_DIGEST, type DigestChanges, type DigestTreeLike } from '../table/digest-tree.js'
import { fromHex, xorBytes } from '../table/hash.js'
import { ID_SEP, parsePartitionId, partitionId } from '../table/ids.js'
import { COUNT_PREFIX, prefixEnd, ROOT_PREFIX, SEP } from './layout.js'

export interface PartitionSummary {
  partition: string
  /** Live rows. */
  rows: number
  /** Digest tree root (16 zero bytes: no rows). */
  digest: Uint8Array
}

interface Iterate<V> {
  iterator(options: { gte: string; lt: string }): AsyncIterable<[string, V]>
}

/**
 * The digest roots and live counts of every partition held (kept in memory, loaded at open from
 * meta), and a bounded cache of whole digest trees (≈1.1 MB each, rebuilt from their stored
 * leaves on demand). Only moves after a batch is durable.
 */
export class DigestState {
  private readonly counts = new Map<string, number>()
  private readonly roots = new Map<string, Uint8Array>()
  private readonly trees = new Map<string, DigestTree>()
  /** Partitions held per table. */
  private readonly perTable = new Map<string, number>()
  /** Bumped at every commit, so a tree built while a commit landed is not cached stale. */
  private epoch = 0
  /**
   * Leaf values as the last durable commit wrote them (pid␀leaf → value), at most LEAF_MEMO_SIZE:
   * commits are the only writers of leaves, so an entry stays true until the
   * next commit to that leaf replaces it.
   */
  private readonly leafMemo = new Map<string, Uint8Array>()

  constructor(private readonly treeCacheSize = DEFAULT_TREE_CACHE_SIZE) {}

  async load(meta: Iterate<string>): Promise<void> {
    for await (const [key, value] of meta.iterator({ gte: COUNT_PREFIX, lt: prefixEnd(COUNT_PREFIX) })) this.counts.set(key.slice(COUNT_PREFIX.length), Number(value))
    for await (const [key, value] of meta.iterator({ gte: ROOT_PREFIX, lt: prefixEnd(ROOT_PREFIX) })) this.roots.set(key.slice(ROOT_PREFIX.length), fromHex(value))
    for (const pid of this.partitionIds()) {
      const { table } = parsePartitionId(pid)
      this.perTable.set(table, (this.perTable.get(table) ?? 0) + 1)
    }
  }

  /** Partitions of a table held here. */
  partitionCount(table: string): number {
    return this.perTable.get(table) ?? 0
  }

  /** True if rows of this partition (live or deleted) are stored here. */
  holds(table: string, partition: string): boolean {
    const id = partitionId(table, partition)
    return this.counts.has(id) || this.roots.has(id)
  }

  /** One partition's summary as it is now; undefined when no row of it is held. */
  partition(table: string, partition: string): PartitionSummary | undefined {
    if (!this.holds(table, partition)) return undefined
    const pid = partitionId(table, partition)
    return { partition, rows: this.liveCount(pid), digest: this.root(pid) }
  }

  root(pid: string): Uint8Array {
    return this.roots.get(pid) ?? ZERO_DIGEST
  }

  liveCount(pid: string): number {
    return this.counts.get(pid) ?? 0
  }

  /** Partitions of a table that hold rows (live or deleted), sorted, with live counts and roots. */
  partitions(table: string): PartitionSummary[] {
    const out: PartitionSummary[] = []
    const prefix = table + SEP
    // A partition holding only deleted rows may have a root but no count entry.
    for (const id of new Set([...this.counts.keys(), ...this.roots.keys()])) {
      if (!id.startsWith(prefix)) continue
      out.push({ partition: parsePartitionId(id).partition, rows: this.counts.get(id) ?? 0, digest: this.roots.get(id) ?? ZERO_DIGEST })
    }
    return out.sort((a, b) => (a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0))
  }

  /** Every held partition, as partition ids. */
  partitionIds(): string[] {
    return [...new Set([...this.counts.keys(), ...this.roots.keys()])]
  }

  /** Live rows of a partition, by partition id. */
  rowCountOf(pid: string): number {
    return this.counts.get(pid) ?? 0
  }

  rowCount(table: string, partition?: string): number {
    if (partition !== undefined) return this.counts.get(partitionId(table, partition)) ?? 0
    let total = 0
    const prefix = table + SEP
    for (const [id, rows] of this.counts) if (id.startsWith(prefix)) total += rows
    return total
  }

  /** The cached tree of a partition, if any (the commit reads leaves from it). */
  cachedTree(pid: string): DigestTree | undefined {
    return this.trees.get(pid)
  }

  /** A leaf's committed value from a cached tree or the leaf memo; undefined: read it from LevelDB. */
  knownLeaf(pid: string, leaf: number): Uint8Array | undefined {
    return this.trees.get(pid)?.leaf(leaf) ?? this.leafMemo.get(`${pid}${ID_SEP}${leaf}`)
  }

  /** Leaf values a commit has just made durable. */
  leavesWritten(leaves: ReadonlyArray<{ partition: string; leaf: number; value: Uint8Array }>): void {
    // Also for partitions with a cached tree: a tree may be evicted later, and the memo must not
    // then hold a value older than what was written meanwhile.
    // Full, it starts over rather than evicting the oldest entry: finding a Map's first key after
    // many deletes walks their empty slots (~13 µs an eviction at 10k entries, row-cache.ts), which
    // cost a bulk load of 50k new rows 15–20% of its rate (15.1–16.6k against 18.1–19.7k rows/s).
    for (const { partition, leaf, value } of leaves) {
      const id = `${partition}${ID_SEP}${leaf}`
      if (this.leafMemo.size >= LEAF_MEMO_SIZE && !this.leafMemo.has(id)) this.leafMemo.clear()
      this.leafMemo.set(id, value)
    }
  }

  /**
   * A partition's digest tree, rebuilt from its stored leaves when not cached. Only partitions
   * held here are built and cached: a peer asking about partitions that do not exist costs
   * nothing but an empty answer.
   */
  async tree(pid: string, readLeaves: () => Promise<Array<[number, Uint8Array]>>): Promise<DigestTreeLike> {
    const cached = this.trees.get(pid)
    if (cached !== undefined) return cached
    if (!this.counts.has(pid) && !this.roots.has(pid)) return EMPTY_TREE
    const epoch = this.epoch
    const tree = DigestTree.fromLeaves(await readLeaves())
    const raced = this.trees.get(pid)
    if (raced !== undefined) return raced
    if (epoch === this.epoch) {
      this.trees.set(pid, tree)
      // Evict on insert, oldest first: the cache never holds more than its size.
      while (this.trees.size > this.treeCacheSize) this.trees.delete(this.trees.keys().next().value!)
    }
    return tree
  }

  /** New roots and counts a batch of changes leads to (written in the batch before they are applied here). */
  next(changes: DigestChanges): { roots: Map<string, Uint8Array>; counts: Map<string, number> } {
    const roots = new Map<string, Uint8Array>()
    for (const [pid, change] of changes.roots()) roots.set(pid, xorBytes(this.root(pid), change))
    const counts = new Map<string, number>()
    for (const [pid, change] of changes.counts()) counts.set(pid, (this.counts.get(pid) ?? 0) + change)
    return { roots, counts }
  }

  /** Moves the in-memory view once a batch is durable. */
  committed(changes: DigestChanges, next: { roots: Map<string, Uint8Array>; counts: Map<string, number> }): void {
    this.epoch++
    for (const { partition, leaf, change } of changes.leaves()) this.trees.get(partition)?.apply(leaf, change)
    for (const pid of new Set([...next.roots.keys(), ...next.counts.keys()])) {
      if (this.counts.has(pid) || this.roots.has(pid)) continue
      const { table } = parsePartitionId(pid)
      this.perTable.set(table, (this.perTable.get(table) ?? 0) + 1)
    }
    for (const [pid, root] of next.roots) this.roots.set(pid, root)
    for (const [pid, count] of next.counts) this.counts.set(pid, count)
  }

  clear(): void {
    this.trees.clear()
    this.leafMemo.clear()
  }
}

/** The tree of a partition not held here: all zeros. Shared and never modified. */
const EMPTY_TREE: DigestTreeLike = new SparseDigestTree()
