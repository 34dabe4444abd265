import type { ColumnKind } from '../table/schema.js'
import { BridgeConfigError } from './errors.js'
import type { DialectName } from './types.js'

/*
 * The port every database sits behind. The bridge's capture, write-back and reconciliation are
 * written once over it; test/bridge/dialect-contract.ts is the suite every dialect passes.
 *
 * Objects the bridge creates in the mirrored database (SymmetricDS keeps its sym_* tables the
 * same way):
 *   shoal_capture      id (ever increasing, never reused), tbl, op, pk, data (JSON), at (ms)
 *                      — filled by triggers on the mirrored tables, drained in id order
 *   shoal_dead_letter  (tbl, pk, direction) → reason, attempts, next attempt; writes the
 *                      database refused, retried with backoff
 *   shoal_state        k → v: 'epoch', a random id made with the capture table, so a bookmark
 *                      of capture ids from another incarnation of the table is never trusted
 *   triggers           shoal_<table>_… (SQLite, MySQL) or shoal_capture (PostgreSQL)
 * Writes made by the bridge itself are not captured: each dialect marks its own transactions in
 * a way only its triggers read (a SQLite marker row visible only inside the bridge's write
 * transaction, a PostgreSQL transaction-local setting, a MySQL session variable).
 */

/**
 * Capture op codes: I insert, U update (changed columns only; counters as increments), D delete,
 * S snapshot of a whole row (absolute values: initial load), C snapshot of added columns of an
 * existing row (absolute values: ADD COLUMN backfill).
 */
export type CaptureOp = 'I' | 'U' | 'D' | 'S' | 'C'

export interface CapturedChange {
  id: number
  /** The SQL table. */
  table: string
  op: CaptureOp
  /** The primary key as the database renders it as text. */
  pk: string
  /** Column → value (as the database renders it in JSON); counters as increments for I and U. */
  data: Record<string, unknown>
  /** Capture time, ms since the epoch (database clock). */
  at: number
}

export interface SqlColumnInfo {
  name: string
  /** The type as the dialect's mapping reads it (SQLite declared type, PostgreSQL udt_name, MySQL COLUMN_TYPE). */
  type: string
  primaryKey: boolean
}

/** A mirrored table as the database side needs it. */
export interface MirrorSpec {
  sqlTable: string
  shoalTable: string
  primaryKey: string
  /** Mirrored columns, primary key included. */
  columns: ReadonlyArray<{ name: string; kind: ColumnKind }>
}

export interface PendingSummary {
  table: string
  count: number
  /** Capture time of the oldest pending change (ms since the epoch). */
  oldestAt: number | null
}

export type DeadLetterDirection = 'write' | 'capture'

export interface DeadLetter {
  table: string
  pk: string
  direction: DeadLetterDirection
  reason: string
  /** For capture dead letters: the captured change as JSON, kept for the operator. */
  data: string | null
  attempts: number
  firstAt: number
  nextAt: number
}

/** Statements inside one write-back transaction; the bridge's own writes are not captured. */
export interface SqlWriteTx {
  /** Current rows of these keys (native key values), locked until the transaction ends, as readRows renders them. */
  lockRows(spec: MirrorSpec, keys: readonly unknown[]): Promise<Array<Record<string, unknown>>>
  /** Key texts (as the capture table holds them) of this table with captured changes not drained yet. */
  pendingKeys(spec: MirrorSpec): Promise<Set<string>>
  /** Inserts or replaces whole rows: values by column, already converted with toSqlValue. */
  upsert(spec: MirrorSpec, rows: ReadonlyArray<Record<string, unknown>>): Promise<void>
  delete(spec: MirrorSpec, keys: readonly unknown[]): Promise<void>
}

export interface SqlDialect {
  readonly name: DialectName
  /** Where, for logs and status (never a password). */
  readonly label: string
  /** JSON columns come back as text (SQLite, MySQL) rather than parsed (PostgreSQL). */
  readonly jsonAsText: boolean
  /** Whether the database pushes wake-ups (LISTEN/NOTIFY, file watch); else the bridge polls. */
  readonly pushes: boolean
  connect(): Promise<void>
  close(): Promise<void>
  /** Columns of a table, or null when it does not exist. */
  describeTable(table: string): Promise<SqlColumnInfo[] | null>
  createTable(table: string, columns: ReadonlyArray<{ name: string; sqlType: string }>, primaryKey: string): Promise<void>
  addColumn(table: string, column: string, sqlType: string): Promise<void>
  /** Creates the capture, dead-letter and state tables if missing; returns the capture epoch. */
  installBase(): Promise<string>
  /** Whether this table's capture triggers exist. */
  hasCapture(spec: MirrorSpec): Promise<boolean>
  /**
   * (Re)creates the table's capture triggers for `spec`'s columns, and — atomically with that, no
   * other write in between — captures a snapshot of every row: 'all' captures whole rows ('S'); a
   * column list captures those columns plus the key ('C'), skipping rows where they are all NULL;
   * null captures nothing.
   */
  installCapture(spec: MirrorSpec, counters: readonly string[], snapshot: readonly string[] | 'all' | null): Promise<void>
  /** Removes the table's capture triggers (not the captured changes). */
  dropCapture(spec: MirrorSpec): Promise<void>
  /** Oldest captured changes, in id order. */
  readCaptured(limit: number): Promise<CapturedChange[]>
  deleteCaptured(ids: readonly number[]): Promise<void>
  pending(): Promise<PendingSummary[]>
  /** Runs `fn` in one transaction whose writes are not captured; commits, or rolls back and rethrows. */
  writeTx<T>(fn: (tx: SqlWriteTx) => Promise<T>): Promise<T>
  /** Rows in key order after `after` (a native key value, null: from the start), as the database renders them in JSON. */
  readRows(spec: MirrorSpec, after: unknown, limit: number): Promise<Array<Record<string, unknown>>>
  putDeadLetter(letter: DeadLetter): Promise<void>
  deleteDeadLetter(table: string, pk: string, direction: DeadLetterDirection): Promise<void>
  deadLetters(): Promise<DeadLetter[]>
  /** Calls `wake` when another client may have committed captured changes; returns a stop function. */
  watch(wake: () => void): () => void
}

/** SQL identifiers the bridge writes into statements: plain names only, so quoting is trivial and safe. */
export const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

export function checkIdentifier(what: string, name: string): string {
  if (!SQL_IDENTIFIER.test(name)) {
    throw new BridgeConfigError(`${what} ${JSON.stringify(name)} is not a plain SQL identifier (letters, digits, '_', at most 63); rename it or map it with "sql"`)
  }
  return name
}

/** Names of the bridge's own objects; mirrored tables may not use them. */
export const CAPTURE_TABLE = 'shoal_capture'
export const DEAD_LETTER_TABLE = 'shoal_dead_letter'
export const STATE_TABLE = 'shoal_state'
export const RESERVED_PREFIX = 'shoal_'

/** Longest dead-letter reason kept (database error texts can be long). */
export const MAX_REASON_CHARS = 1000

export function trimReason(reason: string): string {
  return reason.length > MAX_REASON_CHARS ? reason.slice(0, MAX_REASON_CHARS) + '…' : reason
}
