import { isCarried, type Carries } from '../../sync/carries.js'
import { NODE_HASH_BYTES, type PartitionRoot, type RangeCursor, type RowBytes } from '../../sync/sync-messages.js'
import { truncatedChildren, type SyncReplica } from '../../sync/replica.js'
import { DigestChanges, leafOf, SparseDigestTree, ZERO_DIGEST } from '../../table/digest-tree.js'
import { partitionId } from '../../table/ids.js'
import type { EngineContext, RowEngine } from '../../table/engine.js'
import { engineFor } from '../../table/engines.js'
import { RowDocument, type RowOp, type RowState } from '../../table/row.js'
import type { ResolvedSchema } from '../../table/schema.js'

interface MemoryRow {
  doc: RowDocument
  hash: Uint8Array
  alive: boolean
}

interface MemoryPartition {
  table: string
  partition: string
  tree: SparseDigestTree
  live: number
  rows: Map<string, MemoryRow>
  leaves: Map<number, Set<string>>
}

export type RowChangeListener = (table: string, partition: string, key: string, delta: Uint8Array, origin: string) => void

/**
 * An in-memory replica for model-mode simulation: the same row documents, digest trees and
 * anti-entropy surface as a Shoal store, without LevelDB, so a thousand peers fit in one process.
 * Every write is "durable" the moment it returns (the simulator models crashes as lost in-flight
 * messages, not lost acknowledged writes; real-stack mode tests the disk).
 */
export class MemoryReplica implements SyncReplica {
  private readonly partitions = new Map<string, MemoryPartition>()
  private readonly schemas: Map<string, ResolvedSchema>
  private readonly carried: Carries
  onChange: RowChangeListener | undefined

  constructor(
    tables: readonly ResolvedSchema[],
    carries: Carries,
    private readonly context: EngineContext,
    /** The row engines; tests substitute deliberately broken ones to check the checker. */
    private readonly engines: (name: ResolvedSchema['engine']) => RowEngine = engineFor,
  ) {
    this.schemas = new Map(tables.map((t) => [t.name, t]))
    this.carried = Object.fromEntries(Object.entries(carries).map(([t, ps]) => [t, [...ps]]))
  }

  carries(): Carries {
    return this.carried
  }

  holds(table: string, partition: string): boolean {
    return (this.partitions.get(partitionId(table, partition))?.rows.size ?? 0) > 0
  }

  /** Whether this replica takes rows of (table, partition): by its carries, or because it holds some. */
  takes(table: string, partition: string): boolean {
    return isCarried(this.carried, table, partition, (t, p) => this.holds(t, p))
  }

  roots(): PartitionRoot[] {
    return [...this.partitions.values()].filter((p) => p.rows.size > 0).map((p) => ({ table: p.table, partition: p.partition, root: p.tree.root(), rows: this.liveRows(p) }))
  }

  partitionRoot(table: string, partition: string): PartitionRoot | undefined {
    const p = this.partitions.get(partitionId(table, partition))
    return p === undefined || p.rows.size === 0 ? undefined : { table, partition, root: p.tree.root(), rows: this.liveRows(p) }
  }

  knowsTable(table: string): boolean {
    return this.schemas.has(table)
  }

  // ---- local operations ----------------------------------------------------------------------

  /** Applies a local operation; returns its delta (null: nothing changed). Throws like the store does (e.g. RowNotFoundError). */
  write(table: string, partition: string, key: string, op: RowOp): { delta: Uint8Array | null; state: RowState } {
    const schema = this.schema(table)
    const p = this.partition(table, partition)
    const existing = p.rows.get(key)
    const doc = existing?.doc ?? RowDocument.create(this.engines(schema.engine), this.context, table, key)
    const delta = doc.apply(op, schema)
    if (delta !== null) {
      this.store(p, key, doc, existing)
      this.onChange?.(table, partition, key, delta, 'local')
    } else if (existing === undefined) {
      doc.dispose()
    }
    return { delta, state: doc.state(schema) }
  }

  /** The row as a reader sees it, or null if this replica never held it. */
  read(table: string, partition: string, key: string): RowState | null {
    const row = this.partitions.get(partitionId(table, partition))?.rows.get(key)
    return row === undefined ? null : row.doc.state(this.schema(table))
  }

  /** Every row of a partition: key → (state, hash hex). */
  *rows(table: string, partition: string): Iterable<[string, MemoryRow]> {
    const p = this.partitions.get(partitionId(table, partition))
    if (p !== undefined) yield* p.rows
  }

  heldPartitions(): Array<{ table: string; partition: string }> {
    return [...this.partitions.values()].filter((p) => p.rows.size > 0).map((p) => ({ table: p.table, partition: p.partition }))
  }

  /** Merges a delta from a peer; returns whether the state moved. */
  merge(table: string, partition: string, key: string, delta: Uint8Array, origin: string): 'changed' | 'pending' | 'unchanged' {
    const schema = this.schema(table)
    const p = this.partition(table, partition)
    const existing = p.rows.get(key)
    const doc = existing?.doc ?? RowDocument.create(this.engines(schema.engine), this.context, table, key)
    let result
    try {
      result = doc.applyDelta(delta)
    } catch (error) {
      if (existing === undefined) doc.dispose()
      throw error
    }
    if (result === 'unchanged' && existing !== undefined) return result
    this.store(p, key, doc, existing)
    if (result === 'changed') this.onChange?.(table, partition, key, delta, origin)
    return result
  }

  // ---- SyncReplica ---------------------------------------------------------------------------

  async children(table: string, partition: string, level: number, nodes: readonly number[]): Promise<Uint8Array> {
    const tree = this.partitions.get(partitionId(table, partition))?.tree ?? new SparseDigestTree()
    return truncatedChildren(tree, level, nodes)
  }

  async leafRows(table: string, partition: string, leaves: readonly number[]): Promise<Array<{ leaf: number; key: string; hash: Uint8Array }>> {
    const p = this.partitions.get(partitionId(table, partition))
    if (p === undefined) return []
    return leaves.flatMap((leaf) => [...(p.leaves.get(leaf) ?? [])].sort().map((key) => ({ leaf, key, hash: p.rows.get(key)!.hash.slice(0, NODE_HASH_BYTES) })))
  }

  async range(table: string, partition: string, from: number, to: number, after: RangeCursor | null, maxBytes: number): Promise<{ rows: RowBytes[]; next: RangeCursor | null }> {
    const p = this.partitions.get(partitionId(table, partition))
    if (p === undefined) return { rows: [], next: null }
    const ordered = [...p.rows.keys()]
      .map((key) => ({ leaf: leafOf(key), key }))
      .filter((r) => r.leaf >= from && r.leaf < to && (after === null || r.leaf > after.leaf || (r.leaf === after.leaf && r.key > after.key)))
      .sort((a, b) => a.leaf - b.leaf || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    const rows: RowBytes[] = []
    let bytes = 0
    for (let i = 0; i < ordered.length; i++) {
      const r = ordered[i]!
      const encoded = p.rows.get(r.key)!.doc.encode()
      if (rows.length > 0 && bytes + encoded.length > maxBytes) return { rows, next: ordered[i - 1]! }
      rows.push({ key: r.key, bytes: encoded })
      bytes += encoded.length
    }
    return { rows, next: null }
  }

  async fetch(table: string, partition: string, items: ReadonlyArray<{ key: string; version: Uint8Array | null }>): Promise<Array<{ key: string; bytes: Uint8Array | null; version: Uint8Array | null }>> {
    const p = this.partitions.get(partitionId(table, partition))
    return items.map((item) => {
      const row = p?.rows.get(item.key)
      if (row === undefined) return { key: item.key, bytes: null, version: null }
      if (item.version === null) return { key: item.key, bytes: row.doc.encode(), version: null }
      return { key: item.key, bytes: row.doc.deltaSince(item.version), version: row.doc.holdsAll(item.version) ? null : row.doc.version() }
    })
  }

  async versions(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
    const rows = this.partitions.get(partitionId(table, partition))?.rows
    return keys.map((key) => rows?.get(key)?.doc.version() ?? null)
  }

  async deltaSince(table: string, partition: string, key: string, version: Uint8Array): Promise<Uint8Array | null> {
    return this.partitions.get(partitionId(table, partition))?.rows.get(key)?.doc.deltaSince(version) ?? null
  }

  async apply(table: string, partition: string, rows: readonly RowBytes[], from: string): Promise<{ changed: number; refused: number }> {
    let changed = 0
    let refused = 0
    if (!this.knowsTable(table) || !this.takes(table, partition)) return { changed, refused: rows.length }
    for (const r of rows) {
      try {
        if (this.merge(table, partition, r.key, r.bytes, from) === 'changed') changed++
      } catch {
        refused++
      }
    }
    return { changed, refused }
  }

  /** Frees engine memory (Automerge WASM). The replica must not be used afterwards. */
  dispose(): void {
    for (const p of this.partitions.values()) for (const r of p.rows.values()) r.doc.dispose()
    this.partitions.clear()
  }

  // ---- internals -----------------------------------------------------------------------------

  private schema(table: string): ResolvedSchema {
    const schema = this.schemas.get(table)
    if (schema === undefined) throw new Error(`table '${table}' is not part of this simulation`)
    return schema
  }

  private partition(table: string, partition: string): MemoryPartition {
    const id = partitionId(table, partition)
    let p = this.partitions.get(id)
    if (p === undefined) {
      p = { table, partition, tree: new SparseDigestTree(), live: 0, rows: new Map(), leaves: new Map() }
      this.partitions.set(id, p)
    }
    return p
  }

  private store(p: MemoryPartition, key: string, doc: RowDocument, existing: MemoryRow | undefined): void {
    const hash = doc.rowHash(key)
    const alive = doc.alive
    // The same bookkeeping as the store's commit, applied at once.
    const changes = new DigestChanges()
    const pid = partitionId(p.table, p.partition)
    changes.row(pid, key, existing?.hash ?? null, hash, existing?.alive === true, alive)
    for (const { leaf, change } of changes.leaves()) p.tree.apply(leaf, change)
    p.live += changes.counts().get(pid) ?? 0
    if (existing === undefined) {
      p.rows.set(key, { doc, hash, alive })
      const leaf = leafOf(key)
      let set = p.leaves.get(leaf)
      if (set === undefined) p.leaves.set(leaf, (set = new Set()))
      set.add(key)
    } else {
      existing.hash = hash
      existing.alive = alive
    }
  }

  private liveRows(p: MemoryPartition): number {
    return p.live
  }

  /** The digest root of one partition (zero if not held). */
  root(table: string, partition: string): Uint8Array {
    return this.partitions.get(partitionId(table, partition))?.tree.root() ?? ZERO_DIGEST.slice()
  }
}
