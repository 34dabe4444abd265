// Over 400 lines on purpose: the library's public API (Shoal and Table) in one file, as users read it;
// everything behind it lives in store/.
import { PartitionError, UnknownColumnError, UnknownTableError, ValidationError } from './errors.js'
import { CATALOG_SCHEMA, CATALOG_TABLE, schemaToCatalogValues } from './table/catalog.js'
import type { ApplyResult } from './table/engine.js'
import { toHex } from './table/hash.js'
import type { RowOp } from './table/row.js'
import {
  extendSchema,
  normalizeKeyValue,
  sameSchema,
  validateSchema,
  validateValue,
  type ResolvedSchema,
  type TableSchema,
} from './table/schema.js'
import { Store, type AtomicWrite, type ChangeEvent, type ChangeListener, type CheckReport, type ReplicaSource, type StoreOptions } from './store/store.js'
import { ID_SEP } from './table/ids.js'
import { isPlainObject } from './validation.js'

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
  /**
   * The text `index` and `delete` refer to, as the caller last read it (a text field's content).
   * Given, the store moves the edit onto the row's current text first, in the same write: changes
   * others made since the read are kept and the edit lands where it was meant to. Without it the
   * index is taken as it is, against whatever the text is by the time the write applies.
   */
  base?: string
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

/** One write, for `Table.write`: the general form of put, update, increment, editText and delete. */
export type TableWrite =
  | { op: 'put'; key: string | number; values: Row }
  | { op: 'update'; key: string | number; values: Row }
  | { op: 'increment'; key: string | number; column: string; by?: number }
  | { op: 'editText'; key: string | number; column: string; edit: TextEdit }
  | { op: 'delete'; key: string | number }

/** One write of an atomic batch (Shoal.applyBatch): a TableWrite naming its table (and optionally its partition). */
export type BatchOp = TableWrite & { table: string; partition?: string | number }

export interface ApplyBatchOptions {
  /** Committed in the same LevelDB batch as the writes (value null removes it); read it with bookmark(). */
  bookmark?: { name: string; value: string | null }
  /** Carried into the change events of these writes (ChangeEvent.source), so the writer can recognise its own changes. */
  source?: string
}

/** Per write of a batch: what it did, or why it was refused. */
export type BatchResult = { ok: true; result: WriteResult } | { ok: false; error: Error }

/** A row as stored here, tombstones included (Table.stored). */
export interface StoredRowState {
  partition: string
  alive: boolean
  life: number
  /** The row's values; null when deleted. */
  row: Row | null
}

/** What a write did, as committed. */
export interface WriteResult {
  key: string
  partition: string
  /** False when the write changed nothing (e.g. deleting an absent row). */
  changed: boolean
  alive: boolean
  /** The row's causal length after the write (odd: alive; see "How rows merge" in the README). */
  life: number
  /** The row after the write; null when it is deleted or absent. */
  row: Row | null
}

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
  private constructor(private readonly store: Store) {}

  static async open(options: ShoalOptions): Promise<Shoal> {
    if (!isPlainObject(options as unknown) || typeof options.dir !== 'string' || options.dir === '') {
      throw new ValidationError("Shoal.open needs { dir: '<data folder>' }")
    }
    for (const field of ['rowCacheSize', 'treeCacheSize'] as const) {
      const value = options[field]
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw new ValidationError(`Shoal.open: '${field}' must be a positive integer`)
    }
    return new Shoal(await Store.open(options))
  }

  /** This replica's identity (stable for the data folder). */
  get actor(): string {
    return this.store.actor
  }

  /** The data folder. */
  get dir(): string {
    return this.store.dir
  }

  /** False once close() has begun. */
  get isOpen(): boolean {
    return this.store.isOpen
  }

  /** Defines a table, or extends an existing one with new columns. Returns the schema in force. */
  async defineTable(input: TableSchema): Promise<ResolvedSchema> {
    const next = validateSchema(input)
    const current = this.store.schema(next.name)
    const merged = current === undefined ? next : extendSchema(current, next)
    if (current !== undefined && sameSchema(current, merged)) return current
    const values = schemaToCatalogValues(merged)
    if (current !== undefined) {
      // Only the new columns: concurrent additions on other peers then merge column by column.
      for (const key of Object.keys(values)) if (key.startsWith('col:') && current.columns[key.slice(4)] !== undefined) delete values[key]
    }
    await this.store.writeLocal(CATALOG_SCHEMA, merged.name, '', null, { op: 'put', values })
    return this.store.requireSchema(merged.name)
  }

  /** All user tables, by name. */
  tables(): ResolvedSchema[] {
    return this.store.tables()
  }

  schema(name: string): ResolvedSchema {
    if (name === CATALOG_TABLE) throw new UnknownTableError(name, this.store.tables().map((t) => t.name))
    return this.store.requireSchema(name)
  }

  table(name: string): Table {
    this.schema(name)
    return new Table(this.store, name)
  }

  /** Every committed change, local or remote, to any table (including the `_tables` catalog). */
  subscribe(listener: ChangeListener): () => void {
    if (typeof listener !== 'function') throw new ValidationError('subscribe needs a function (event) => void')
    return this.store.subscribe(listener)
  }

  /**
   * The store as replication sees it (gossip, anti-entropy): digest trees, rows as stored, peers'
   * rows merged with every check applied. Not for application code: use tables.
   */
  replication(): ReplicaSource {
    return this.store
  }

  /**
   * Merges a delta received from a peer. Refuses (with a typed error, nothing stored changing)
   * deltas for unknown tables, malformed keys, oversized or undecodable deltas, and rows that fail
   * the row check.
   */
  applyRemoteDelta(table: string, partition: string, key: string, delta: Uint8Array, origin: string): Promise<ApplyResult> {
    return this.store.applyRemote(table, partition, key, delta, origin)
  }

  /**
   * Applies many writes and an optional bookmark in ONE atomic, durable LevelDB batch: after a
   * crash either all of them are stored or none is (store/atomic.ts). Each write is validated like
   * Table.write; one refused on its own (bad value, absent row for update or increment, unknown
   * table…) gets `{ ok: false, error }` and does not stop the others. Rejects only when the batch
   * could not be written, and then nothing of it is stored.
   */
  async applyBatch(ops: readonly BatchOp[], options: ApplyBatchOptions = {}): Promise<BatchResult[]> {
    if (!Array.isArray(ops)) throw new ValidationError('applyBatch needs an array of writes')
    const results: Array<BatchResult | null> = new Array(ops.length).fill(null)
    const writes: AtomicWrite[] = []
    const index: number[] = []
    ops.forEach((op, i) => {
      try {
        if (!isPlainObject(op as unknown)) throw new ValidationError('a batch write is an object { table, op, key, … }')
        const options = op.partition === undefined ? undefined : { partition: op.partition }
        writes.push(this.table(op.table).prepare(op, options))
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
      const w = writes[j]!
      results[index[j]!] = r.ok
        ? { ok: true, result: { key: w.key, partition: r.result.partition, changed: r.result.changed, alive: r.result.state.alive, life: r.result.state.life, row: r.result.state.alive ? { ...r.result.state.values } : null } }
        : { ok: false, error: r.error as Error }
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

  /** Re-reads every row and verifies digests, digest trees, counts and every row's check. */
  check(): Promise<CheckReport> {
    return this.store.check()
  }

  async close(): Promise<void> {
    await this.store.close()
  }
}

function rowOf(result: WriteResult): Row {
  return result.row ?? {}
}

/** One table of a Shoal database. Every write resolves once it is durable. */
export class Table {
  constructor(
    private readonly store: Store,
    readonly name: string,
  ) {}

  get schema(): ResolvedSchema {
    return this.store.requireSchema(this.name)
  }

  /** Inserts the row or merges `values` into it (re-inserting a deleted row). Returns the row. */
  async put(key: string | number, values: Row, options?: RowOptions): Promise<Row> {
    return rowOf(await this.write({ op: 'put', key, values }, options))
  }

  /** Merges `values` into an existing row; RowNotFoundError if it is absent or deleted. */
  async update(key: string | number, values: Row, options?: RowOptions): Promise<Row> {
    return rowOf(await this.write({ op: 'update', key, values }, options))
  }

  /** Adds `by` (default 1, may be negative) to a counter column; concurrent increments add up. */
  async increment(key: string | number, column: string, by = 1, options?: RowOptions): Promise<Row> {
    return rowOf(await this.write({ op: 'increment', key, column, by }, options))
  }

  /** Edits a text column in place; concurrent edits on other peers interleave. */
  async editText(key: string | number, column: string, edit: TextEdit, options?: RowOptions): Promise<Row> {
    return rowOf(await this.write({ op: 'editText', key, column, edit }, options))
  }

  /** Deletes the row (a tombstone that replicates). Returns false if there was no live row. */
  async delete(key: string | number, options?: RowOptions): Promise<boolean> {
    return (await this.write({ op: 'delete', key }, options)).changed
  }

  /**
   * Any write, answering what it did as committed (the row's life included): put, update,
   * increment, editText and delete are this with a shorter answer. Resolves once durable.
   */
  async write(w: TableWrite, options?: RowOptions): Promise<WriteResult> {
    const prepared = this.prepare(w, options)
    const result = await this.store.writeLocal(prepared.schema, prepared.key, prepared.partition, prepared.createPartition, prepared.op)
    const { state } = result
    return { key: prepared.key, partition: result.partition, changed: result.changed, alive: state.alive, life: state.life, row: state.alive ? { ...state.values } : null }
  }

  /** Validates a write without applying it: what the store applies (Table.write, Shoal.applyBatch). */
  prepare(w: TableWrite, options?: RowOptions): AtomicWrite {
    const schema = this.schema
    if (!isPlainObject(w as unknown)) throw new ValidationError(`a write is an object { op, key, … }`)
    const key = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, w.key)
    const partition = this.partitionOption(schema, options)
    let createPartition: string | null = null
    let op: RowOp
    switch (w.op) {
      case 'put':
      case 'update': {
        const values = this.checkedValues(schema, key, w.op, w.values)
        if (partition !== null && values.partition !== null && partition !== values.partition) {
          throw new PartitionError(`the row says ${schema.partitionBy} = '${values.partition}' but the partition option says '${partition}'`)
        }
        createPartition = values.partition ?? partition
        op = { op: w.op, values: values.checked }
        break
      }
      case 'increment': {
        const by = w.by ?? 1
        this.columnOfKind(schema, w.column, 'counter')
        if (typeof by !== 'number' || !Number.isSafeInteger(by)) throw new ValidationError(`increment of '${w.column}' must be an integer, got ${JSON.stringify(by)}`)
        op = { op: 'increment', column: w.column, by }
        break
      }
      case 'editText': {
        this.columnOfKind(schema, w.column, 'text')
        const edit = w.edit
        if (!isPlainObject(edit as unknown)) throw new ValidationError('a text edit is an object { index, delete?, insert? }')
        const insert = edit.insert ?? ''
        if (typeof insert !== 'string') throw new ValidationError(`text edit 'insert' must be a string`)
        validateValue(schema.name, w.column, 'text', insert)
        if (edit.base !== undefined) {
          if (typeof edit.base !== 'string') throw new ValidationError(`text edit 'base' must be the text the edit was made against (a string)`)
          validateValue(schema.name, w.column, 'text', edit.base)
          const del = edit.delete ?? 0
          if (!Number.isSafeInteger(edit.index) || !Number.isSafeInteger(del) || edit.index < 0 || del < 0 || edit.index + del > edit.base.length) {
            throw new ValidationError(`text edit at ${String(edit.index)} deleting ${String(edit.delete ?? 0)} does not fit its base text of ${edit.base.length} characters`)
          }
        }
        op = { op: 'editText', column: w.column, index: edit.index, delete: edit.delete ?? 0, insert, ...(edit.base === undefined ? {} : { base: edit.base }) }
        break
      }
      case 'delete':
        op = { op: 'delete' }
        break
      default:
        throw new ValidationError(`unknown write op ${JSON.stringify((w as { op?: unknown }).op)}; use put, update, increment, editText or delete`)
    }
    return { schema, key, partition, createPartition, op }
  }

  /**
   * The row as stored here, deleted rows included (their tombstone): null only when this replica
   * never stored the key. (`get` answers null for both.)
   */
  async stored(key: string | number, options?: RowOptions): Promise<StoredRowState | null> {
    const schema = this.schema
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    const row = await this.store.read(schema, k, this.partitionOption(schema, options))
    if (row === null) return null
    return { partition: row.partition, alive: row.state.alive, life: row.state.life, row: row.state.alive ? { ...row.state.values } : null }
  }

  /** The row, or null if absent or deleted. */
  async get(key: string | number, options?: RowOptions): Promise<Row | null> {
    const schema = this.schema
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    const row = await this.store.read(schema, k, this.partitionOption(schema, options))
    return row !== null && row.state.alive ? { ...row.state.values } : null
  }

  /** Losing values of concurrent writes per column (Automerge tables keep them; Yjs does not). */
  async conflicts(key: string | number, options?: RowOptions): Promise<Record<string, unknown[]>> {
    const schema = this.schema
    const k = normalizeKeyValue(`key of table '${schema.name}'`, schema.columns[schema.primaryKey]!, key)
    return (await this.store.conflicts(schema, k, this.partitionOption(schema, options))) ?? {}
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
      const cut = options.after.indexOf(ID_SEP)
      if (cut >= 0) after = { partition: options.after.slice(0, cut), key: options.after.slice(cut + 1) }
      else if (fixed !== null) after = { partition: fixed, key: options.after }
      else throw new ValidationError(`scanning all partitions of '${schema.name}': 'after' must be the 'next' cursor of a previous page`)
    }
    const rows = await this.store.scan(schema, fixed, after, limit)
    const last = rows[rows.length - 1]
    const next = rows.length < limit || last === undefined ? null : fixed === null ? `${last.partition}${ID_SEP}${last.key}` : last.key
    return { rows: rows.map((r) => ({ ...r.state.values })), next }
  }

  /** Committed changes to this table, local or remote. */
  subscribe(listener: (event: ChangeEvent) => void): () => void {
    if (typeof listener !== 'function') throw new ValidationError('subscribe needs a function (event) => void')
    return this.store.subscribe((event) => {
      if (event.table === this.name) listener(event)
    })
  }

  /** Checks put/update values against the schema; the partition column's value comes back apart. */
  private checkedValues(schema: ResolvedSchema, key: string, op: 'put' | 'update', values: Row): { checked: Row; partition: string | null } {
    if (!isPlainObject(values as unknown)) throw new ValidationError(`${op} of table '${schema.name}' needs an object of column → value`)
    const checked: Row = {}
    let partition: string | null = null
    for (const [column, value] of Object.entries(values)) {
      const kind = schema.columns[column]
      if (kind === undefined) throw new UnknownColumnError(schema.name, column, Object.keys(schema.columns))
      if (column === schema.primaryKey) {
        const given = normalizeKeyValue(`column '${column}' (the primary key)`, kind, value)
        if (given !== key) throw new ValidationError(`column '${column}' is the primary key: it is '${key}' for this row and cannot be set to '${given}'`)
        continue
      }
      if (column === schema.partitionBy) {
        partition = normalizeKeyValue(`column '${column}' (the partition column)`, kind, value)
        continue
      }
      checked[column] = validateValue(schema.name, column, kind, value)
    }
    return { checked, partition }
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
