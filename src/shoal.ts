import { PartitionError, SchemaError, UnknownColumnError, UnknownTableError, ValidationError } from './errors.js'
import { CATALOG_SCHEMA, CATALOG_TABLE, catalogValuesToSchema, schemaToCatalogValues } from './table/catalog.js'
import type { ApplyResult } from './table/engine.js'
import { toHex } from './table/hash.js'
import type { RowOp } from './table/row.js'
import {
  extendSchema,
  isPlainObject,
  normalizeKeyValue,
  sameSchema,
  validateSchema,
  validateValue,
  type ResolvedSchema,
  type TableSchema,
} from './table/schema.js'
import { Store, type AtomicWrite, type ChangeEvent, type ChangeListener, type CheckReport, type StoreOptions, type StoredRow } from './store/store.js'
import { SEP } from './store/layout.js'

export type Row = Record<string, unknown>

export interface RowOptions {
  /** The row's partition; found from the key when left out (one lookup). */
  partition?: string | number
}

export interface TextEdit {
  /** Position in UTF-16 code units, 0 … length. */
  index: number
  /** Characters to remove at `index` (default 0). */
  delete?: number
  /** Text to insert at `index` (default ''). */
  insert?: string
}

export interface ScanOptions {
  partition?: string | number
  /** Resume after this cursor: the `next` of the previous page. */
  after?: string
  /** Rows per page, 1 … 10,000 (default 100). */
  limit?: number
}

export interface ScanPage {
  rows: Row[]
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null
}

export interface TableStatus {
  name: string
  engine: string
  partitionBy: string | null
  rows: number
  partitions: Array<{ partition: string; rows: number; digest: string }>
}

export interface ShoalStatus {
  actor: string
  dir: string
  tables: TableStatus[]
}

export type ShoalOptions = StoreOptions

/** One write of an atomic batch (Shoal.applyBatch): the same operations as the Table methods. */
export type BatchOp =
  | { op: 'put' | 'update'; table: string; key: string | number; values: Row; partition?: string | number }
  | { op: 'increment'; table: string; key: string | number; column: string; by: number; partition?: string | number }
  | { op: 'delete'; table: string; key: string | number; partition?: string | number }

export interface ApplyBatchOptions {
  /** Committed in the same LevelDB batch as the writes (value null removes it); read it with bookmark(). */
  bookmark?: { name: string; value: string | null }
  /** Carried into the change events of these writes, so the writer can recognise its own changes. */
  source?: string
}

/** Per write: the row after it (null when deleted or not there), or why it was refused. */
export type BatchResult = { ok: true; row: Row | null; changed: boolean } | { ok: false; error: Error }

const DEFAULT_SCAN_LIMIT = 100
const MAX_SCAN_LIMIT = 10_000

/**
 * A Shoal database: typed tables of CRDT rows in one LevelDB folder.
 *
 *   const db = await Shoal.open({ dir: './data' })
 *   await db.defineTable({ name: 'stock', primaryKey: 'sku', columns: { sku: 'string', qty: 'counter' } })
 *   await db.table('stock').put('A1', { qty: 10 })
 */
export class Shoal {
  private readonly schemas = new Map<string, ResolvedSchema>()
  private readonly unsubscribeCatalog: () => void

  private constructor(readonly store: Store) {
    this.unsubscribeCatalog = store.subscribe((event) => {
      if (event.table === CATALOG_TABLE) this.refreshCatalogRow(event.key, event.row)
    })
  }

  static async open(options: ShoalOptions): Promise<Shoal> {
    if (!isPlainObject(options as unknown) || typeof options.dir !== 'string' || options.dir === '') {
      throw new ValidationError("Shoal.open needs { dir: '<data folder>' }")
    }
    for (const field of ['rowCacheSize', 'treeCacheSize'] as const) {
      const value = options[field]
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw new ValidationError(`Shoal.open: '${field}' must be a positive integer`)
    }
    const store = await Store.open(options)
    const shoal = new Shoal(store)
    try {
      let after: { partition: string; key: string } | null = null
      while (true) {
        const page: StoredRow[] = await store.scan(CATALOG_SCHEMA, '', after, 1000)
        for (const row of page) shoal.refreshCatalogRow(row.key, row.state.values)
        if (page.length < 1000) break
        after = { partition: '', key: page[page.length - 1]!.key }
      }
    } catch (error) {
      await store.close()
      throw error
    }
    return shoal
  }

  /** This replica's identity (stable for the data folder). */
  get actor(): string {
    return this.store.actor
  }

  /** Defines a table, or extends an existing one with new columns. Returns the schema in force. */
  async defineTable(input: TableSchema): Promise<ResolvedSchema> {
    const next = validateSchema(input)
    const current = this.schemas.get(next.name)
    const merged = current === undefined ? next : extendSchema(current, next)
    if (current !== undefined && sameSchema(current, merged)) return current
    const values = schemaToCatalogValues(merged)
    if (current !== undefined) {
      // Only the new columns: concurrent additions on other peers then merge column by column.
      for (const key of Object.keys(values)) if (key.startsWith('col:') && current.columns[key.slice(4)] !== undefined) delete values[key]
    }
    await this.store.writeLocal(CATALOG_SCHEMA, merged.name, '', null, { op: 'put', values })
    this.schemas.set(merged.name, merged)
    return merged
  }

  /** All user tables, by name. */
  tables(): ResolvedSchema[] {
    return [...this.schemas.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  schema(name: string): ResolvedSchema {
    const schema = this.schemas.get(name)
    if (schema === undefined) throw new UnknownTableError(name, [...this.schemas.keys()])
    return schema
  }

  table(name: string): Table {
    this.schema(name)
    return new Table(this, name)
  }

  /** Every committed change, local or remote, to any table (including the `_tables` catalog). */
  subscribe(listener: ChangeListener): () => void {
    if (typeof listener !== 'function') throw new ValidationError('subscribe needs a function (event) => void')
    return this.store.subscribe(listener)
  }

  /**
   * Merges a delta received from a peer. Refuses (with a typed error, nothing stored changing)
   * deltas for unknown tables, malformed keys, oversized or undecodable deltas.
   */
  async applyRemoteDelta(table: string, partition: string, key: string, delta: Uint8Array, origin: string): Promise<ApplyResult> {
    const schema = table === CATALOG_TABLE ? CATALOG_SCHEMA : this.schema(table)
    if (!(delta instanceof Uint8Array)) throw new ValidationError('a delta must be bytes (Uint8Array)')
    if (schema.partitionBy === null) {
      if (partition !== '') throw new PartitionError(`table '${table}' is not partitioned; a delta for partition '${partition}' is invalid`)
    } else {
      normalizeKeyValue(`partition of table '${table}'`, 'string', partition)
    }
    normalizeKeyValue(`row key of table '${table}'`, 'string', key)
    return this.store.applyRemote(schema, partition, key, delta, origin)
  }

  /**
   * Applies many writes and an optional bookmark in ONE atomic, durable LevelDB batch: after a
   * crash either all of them are stored or none is. Each write is validated like the Table
   * method of the same name; a write refused on its own (bad value, absent row for update or
   * increment, unknown table…) gets `{ ok: false, error }` and does not stop the others. Rejects
   * only when the batch could not be written (then nothing of it is stored).
   */
  async applyBatch(ops: readonly BatchOp[], options: ApplyBatchOptions = {}): Promise<BatchResult[]> {
    if (!Array.isArray(ops)) throw new ValidationError('applyBatch needs an array of writes')
    const results: Array<BatchResult | null> = new Array(ops.length).fill(null)
    const writes: AtomicWrite[] = []
    const index: number[] = []
    ops.forEach((op, i) => {
      try {
        writes.push(this.table(op.table).prepare(op))
        index.push(i)
      } catch (error) {
        results[i] = { ok: false, error: error as Error }
      }
    })
    const stored = await this.store.writeAtomic(writes, {
      ...(options.bookmark === undefined ? {} : { bookmark: options.bookmark }),
      ...(options.source === undefined ? {} : { source: options.source }),
    })
    stored.forEach((r, j) => {
      results[index[j]!] = r.ok ? { ok: true, row: r.result.state.alive ? { ...r.result.state.values } : null, changed: r.result.changed } : { ok: false, error: r.error as Error }
    })
    return results as BatchResult[]
  }

  /** The committed value of a bookmark written with applyBatch, or null. */
  async bookmark(name: string): Promise<string | null> {
    if (typeof name !== 'string' || name === '') throw new ValidationError('a bookmark name is a non-empty string')
    return this.store.bookmark(name)
  }

  async status(): Promise<ShoalStatus> {
    const tables: TableStatus[] = []
    for (const schema of this.tables()) {
      const partitions = this.store.partitions(schema.name)
      tables.push({
        name: schema.name,
        engine: schema.engine,
        partitionBy: schema.partitionBy,
        rows: partitions.reduce((sum, p) => sum + p.rows, 0),
        partitions: partitions.map((p) => ({ partition: p.partition, rows: p.rows, digest: toHex(p.digest) })),
      })
    }
    return { actor: this.actor, dir: this.store.dir, tables }
  }

  /** Re-reads every row and verifies digests, digest trees and counts (see Store.check). */
  async check(): Promise<CheckReport> {
    return this.store.check((table) => (table === CATALOG_TABLE ? CATALOG_SCHEMA : this.schemas.get(table)))
  }

  async close(): Promise<void> {
    this.unsubscribeCatalog()
    await this.store.close()
  }

  private refreshCatalogRow(name: string, values: Readonly<Record<string, unknown>> | null): void {
    if (values === null) return
    try {
      const schema = catalogValuesToSchema(values)
      if (schema.name !== name) throw new SchemaError(`catalog row '${name}' describes table '${schema.name}'`)
      this.schemas.set(name, schema)
    } catch (error) {
      // A bad schema from a peer must not take the local tables down; keep the last good one.
      console.error(`shoal: ignoring invalid schema for table '${name}': ${(error as Error).message}`)
    }
  }
}

/** One table of a Shoal database. Every write resolves once it is durable. */
export class Table {
  constructor(
    private readonly shoal: Shoal,
    readonly name: string,
  ) {}

  get schema(): ResolvedSchema {
    return this.shoal.schema(this.name)
  }

  /** Inserts the row or merges `values` into it (re-inserting a deleted row). Returns the row. */
  async put(key: string | number, values: Row, options?: RowOptions): Promise<Row> {
    return this.write(key, values, options, 'put')
  }

  /** Merges `values` into an existing row; RowNotFoundError if it is absent or deleted. */
  async update(key: string | number, values: Row, options?: RowOptions): Promise<Row> {
    return this.write(key, values, options, 'update')
  }

  /** Adds `by` (default 1, may be negative) to a counter column; concurrent increments add up. */
  async increment(key: string | number, column: string, by = 1, options?: RowOptions): Promise<Row> {
    const w = this.prepareIncrement(this.schema, key, column, by, options)
    const result = await this.shoal.store.writeLocal(w.schema, w.key, w.partition, w.createPartition, w.op)
    return { ...result.state.values }
  }

  /** Edits a text column in place; concurrent edits on other peers interleave. */
  async editText(key: string | number, column: string, edit: TextEdit, options?: RowOptions): Promise<Row> {
    const schema = this.schema
    this.columnOfKind(schema, column, 'text')
    if (!isPlainObject(edit as unknown)) throw new ValidationError('a text edit is an object { index, delete?, insert? }')
    const insert = edit.insert ?? ''
    if (typeof insert !== 'string') throw new ValidationError(`text edit 'insert' must be a string`)
    validateValue(schema.name, column, 'text', insert)
    return this.run(schema, key, options, null, { op: 'editText', column, index: edit.index, delete: edit.delete ?? 0, insert })
  }

  /** Deletes the row (a tombstone that replicates). Returns false if there was no live row. */
  async delete(key: string | number, options?: RowOptions): Promise<boolean> {
    const schema = this.schema
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    const result = await this.shoal.store.writeLocal(schema, k, this.partitionOption(schema, options), null, { op: 'delete' })
    return result.changed
  }

  /** The row, or null if absent or deleted. */
  async get(key: string | number, options?: RowOptions): Promise<Row | null> {
    const schema = this.schema
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    const row = await this.shoal.store.read(schema, k, this.partitionOption(schema, options))
    return row !== null && row.state.alive ? { ...row.state.values } : null
  }

  /** Losing values of concurrent writes per column (Automerge tables keep them; Yjs does not). */
  async conflicts(key: string | number, options?: RowOptions): Promise<Record<string, unknown[]>> {
    const schema = this.schema
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    return (await this.shoal.store.conflicts(schema, k, this.partitionOption(schema, options))) ?? {}
  }

  /** A page of live rows in key order (partition, then key, when scanning all partitions). */
  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    const schema = this.schema
    if (!isPlainObject(options as unknown)) throw new ValidationError('scan options must be an object { partition?, after?, limit? }')
    const limit = options.limit ?? DEFAULT_SCAN_LIMIT
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) {
      throw new ValidationError(`scan limit must be an integer from 1 to ${MAX_SCAN_LIMIT}, got ${JSON.stringify(options.limit)}`)
    }
    const partition = this.partitionOption(schema, options)
    const fixed = schema.partitionBy === null ? '' : partition
    let after: { partition: string; key: string } | null = null
    if (options.after !== undefined) {
      if (typeof options.after !== 'string' || options.after === '') throw new ValidationError(`scan 'after' must be the 'next' cursor of a previous page`)
      const cut = options.after.indexOf(SEP)
      if (cut >= 0) after = { partition: options.after.slice(0, cut), key: options.after.slice(cut + 1) }
      else if (fixed !== null) after = { partition: fixed, key: options.after }
      else throw new ValidationError(`scanning all partitions of '${schema.name}': 'after' must be the 'next' cursor of a previous page`)
    }
    const rows = await this.shoal.store.scan(schema, fixed, after, limit)
    const last = rows[rows.length - 1]
    const next = rows.length < limit || last === undefined ? null : fixed === null ? `${last.partition}${SEP}${last.key}` : last.key
    return { rows: rows.map((r) => ({ ...r.state.values })), next }
  }

  /** Committed changes to this table, local or remote. */
  subscribe(listener: (event: ChangeEvent) => void): () => void {
    if (typeof listener !== 'function') throw new ValidationError('subscribe needs a function (event) => void')
    return this.shoal.store.subscribe((event) => {
      if (event.table === this.name) listener(event)
    })
  }

  /** Validates one batch write into what the store applies (throws the same errors as the methods). */
  prepare(batchOp: BatchOp): AtomicWrite {
    const options = batchOp.partition === undefined ? undefined : { partition: batchOp.partition }
    const schema = this.schema
    switch (batchOp.op) {
      case 'put':
      case 'update':
        return this.prepareWrite(batchOp.key, batchOp.values, options, batchOp.op)
      case 'increment':
        return this.prepareIncrement(schema, batchOp.key, batchOp.column, batchOp.by, options)
      case 'delete': {
        const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, batchOp.key)
        return { schema, key: k, partition: this.partitionOption(schema, options), createPartition: null, op: { op: 'delete' } }
      }
      default:
        throw new ValidationError(`unknown batch operation ${JSON.stringify((batchOp as { op?: unknown }).op)}; use put, update, increment or delete`)
    }
  }

  private prepareIncrement(schema: ResolvedSchema, key: string | number, column: string, by: number, options: RowOptions | undefined): AtomicWrite {
    this.columnOfKind(schema, column, 'counter')
    if (typeof by !== 'number' || !Number.isSafeInteger(by)) throw new ValidationError(`increment of '${column}' must be an integer, got ${JSON.stringify(by)}`)
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    return { schema, key: k, partition: this.partitionOption(schema, options), createPartition: null, op: { op: 'increment', column, by } }
  }

  private async write(key: string | number, values: Row, options: RowOptions | undefined, op: 'put' | 'update'): Promise<Row> {
    const w = this.prepareWrite(key, values, options, op)
    const result = await this.shoal.store.writeLocal(w.schema, w.key, w.partition, w.createPartition, w.op)
    return { ...result.state.values }
  }

  private prepareWrite(key: string | number, values: Row, options: RowOptions | undefined, op: 'put' | 'update'): AtomicWrite {
    const schema = this.schema
    if (!isPlainObject(values as unknown)) throw new ValidationError(`${op} of table '${schema.name}' needs an object of column → value`)
    const checked: Row = {}
    let createPartition: string | null = null
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    for (const [column, value] of Object.entries(values)) {
      const kind = schema.columns[column]
      if (kind === undefined) throw new UnknownColumnError(schema.name, column, Object.keys(schema.columns))
      if (column === schema.primaryKey) {
        const given = normalizeKeyValue(`column '${column}' (the primary key)`, kind, value)
        if (given !== k) throw new ValidationError(`column '${column}' is the primary key: it is '${k}' for this row and cannot be set to '${given}'`)
        continue
      }
      if (column === schema.partitionBy) {
        createPartition = normalizeKeyValue(`column '${column}' (the partition column)`, kind, value)
        continue
      }
      checked[column] = validateValue(schema.name, column, kind, value)
    }
    const partition = this.partitionOption(schema, options)
    if (partition !== null && createPartition !== null && partition !== createPartition) {
      throw new PartitionError(`the row says ${schema.partitionBy} = '${createPartition}' but the partition option says '${partition}'`)
    }
    return { schema, key: k, partition, createPartition: createPartition ?? partition, op: { op, values: checked } }
  }

  private async run(schema: ResolvedSchema, key: string | number, options: RowOptions | undefined, createPartition: string | null, op: RowOp): Promise<Row> {
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    const result = await this.shoal.store.writeLocal(schema, k, this.partitionOption(schema, options), createPartition, op)
    return { ...result.state.values }
  }

  private partitionOption(schema: ResolvedSchema, options: RowOptions | ScanOptions | undefined): string | null {
    if (options === undefined || options.partition === undefined) return null
    if (schema.partitionBy === null) throw new PartitionError(`table '${schema.name}' is not partitioned; leave out 'partition'`)
    return normalizeKeyValue(`partition of table '${schema.name}'`, schema.columns[schema.partitionBy]!, options.partition)
  }

  private columnOfKind(schema: ResolvedSchema, column: string, kind: 'counter' | 'text'): void {
    const actual = schema.columns[column]
    if (actual === undefined) throw new UnknownColumnError(schema.name, column, Object.keys(schema.columns))
    if (actual !== kind) throw new ValidationError(`column '${column}' of table '${schema.name}' is ${actual}, not ${kind}`)
  }
}
