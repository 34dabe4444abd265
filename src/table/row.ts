import { RowNotFoundError, ValidationError } from '../errors.js'
import type { ApplyResult, EngineContext, EngineDoc, RowEngine } from './engine.js'
import { rowHash } from './digest-tree.js'
import { hash128 } from './hash.js'
import type { ColumnKind, ResolvedSchema } from './schema.js'
import { textSplices } from './text-diff.js'
import { rebase } from './text-edit.js'

/*
 * Row semantics, identical on both engines and every replica.
 *
 * A row has a *causal length* (cl), as in cr-sqlite: 0 = never created, odd = alive, even =
 * deleted. Each column value is written under the life (cl) it belongs to, and only the current
 * life's values are visible.
 *   - put on an absent or deleted row starts a new life (cl + 1): a re-insert begins from empty
 *     columns; nothing from before the delete comes back.
 *   - delete on a live row ends its life (cl + 1).
 *   - Replicas merge cl as the maximum. Concurrent deletes agree (same cl). Concurrent re-inserts
 *     agree (same cl) and their columns merge like concurrent puts.
 *   - Delete vs. a concurrent update: the DELETE WINS. The update was written in the old life,
 *     which is no longer visible, so a counter increment or text edit made concurrently with a
 *     delete is dropped on every replica. An update made after seeing the delete is a re-insert.
 *   - update / increment / editText need a live row (RowNotFoundError otherwise); delete of an
 *     absent row is a no-op.
 * Within one life: registers are last-writer-wins per column (deterministic on every replica;
 * Automerge keeps the losers as conflicts), counters add up, texts merge edits. A put or update
 * of a text column is written as the smallest edit from the current text to the new value
 * (text-diff.ts), so two replicas putting "Red umbrella" and "Blue umbrella" over "Green umbrella"
 * keep one " umbrella" and merge the two new words, where replacing the whole text would keep
 * both whole values side by side.
 */

export type RowOp =
  | { op: 'put'; values: Readonly<Record<string, unknown>> }
  | { op: 'update'; values: Readonly<Record<string, unknown>> }
  | { op: 'increment'; column: string; by: number }
  | { op: 'editText'; column: string; index: number; delete: number; insert: string; base?: string }
  | { op: 'delete' }

export interface RowState {
  /** True while the row exists (not absent, not deleted). */
  readonly alive: boolean
  /** The causal length: see the rules above. */
  readonly life: number
  /** Column values of the current life; empty when not alive. */
  readonly values: Readonly<Record<string, unknown>>
}

export function isAlive(life: number): boolean {
  return life % 2 === 1
}

function readsCurrent(values: Readonly<Record<string, unknown>>, schema: ResolvedSchema): boolean {
  for (const column in values) {
    const kind = schema.columns[column]
    if (kind === 'counter' || kind === 'text') return true
  }
  return false
}

/** Every schema column at its unset value (null, 0 or ""), per schema. */
const defaultsOf = new WeakMap<ResolvedSchema, Readonly<Record<string, unknown>>>()

function defaults(schema: ResolvedSchema): Readonly<Record<string, unknown>> {
  let values = defaultsOf.get(schema)
  if (values === undefined) {
    const built: Record<string, unknown> = {}
    for (const [column, kind] of Object.entries(schema.columns)) built[column] = kind === 'counter' ? 0 : kind === 'text' ? '' : null
    values = built
    defaultsOf.set(schema, values)
  }
  return values
}

function copyState(state: RowState): RowState {
  return { alive: state.alive, life: state.life, values: { ...state.values } }
}

export class RowDocument {
  /**
   * The last state built, for the schema it was built with, until the document changes. Rows are
   * read far more often than they change (every write returns the row, every change event and
   * scan carries it); callers get copies, so what they do with theirs cannot reach it.
   */
  private memo: { schema: ResolvedSchema | undefined; state: RowState } | null = null

  constructor(
    readonly doc: EngineDoc,
    private readonly table: string,
    private readonly key: string,
  ) {}

  static create(engine: RowEngine, context: EngineContext, table: string, key: string): RowDocument {
    return new RowDocument(engine.create(context), table, key)
  }

  static decode(engine: RowEngine, bytes: Uint8Array, context: EngineContext, table: string, key: string): RowDocument {
    return new RowDocument(engine.decode(bytes, context), table, key)
  }

  get alive(): boolean {
    return isAlive(this.doc.causalLength())
  }

  /**
   * Applies one local operation (already validated against the schema) as one change and returns
   * its delta; null when it changed nothing (e.g. deleting an absent row).
   */
  apply(op: RowOp, schema: ResolvedSchema): Uint8Array | null {
    this.memo = null
    const cl = this.doc.causalLength()
    const alive = isAlive(cl)
    if (op.op === 'delete') {
      if (!alive) return null
      return this.doc.change((w) => w.setCausalLength(cl + 1))
    }
    if (!alive && op.op !== 'put') throw new RowNotFoundError(this.table, this.key)
    const life = alive ? cl : cl + 1
    if (op.op === 'editText' && op.base !== undefined) {
      // Made against a text read earlier: moved onto the current one here, in the same change.
      const moved = rebase({ index: op.index, delete: op.delete, insert: op.insert }, op.base, alive ? (this.doc.read(life).texts.get(op.column) ?? '') : '')
      op = { op: 'editText', column: op.column, index: moved.index, delete: moved.delete, insert: op.insert }
    }
    if (op.op === 'editText') {
      const length = this.doc.textLength(life, op.column)
      if (!Number.isSafeInteger(op.index) || op.index < 0 || op.index > length) {
        throw new ValidationError(`text column '${op.column}' of row '${this.key}' is ${length} long; index ${op.index} is outside 0..${length}`)
      }
      if (!Number.isSafeInteger(op.delete) || op.delete < 0 || op.index + op.delete > length) {
        throw new ValidationError(`text column '${op.column}' of row '${this.key}': cannot delete ${op.delete} characters at ${op.index} of ${length}`)
      }
    }
    // Only counter and text columns are written relative to their current value.
    const current = alive && (op.op === 'put' || op.op === 'update') && readsCurrent(op.values, schema) ? this.doc.read(life) : null
    return this.doc.change((w) => {
      if (!alive) w.setCausalLength(life)
      switch (op.op) {
        case 'increment':
          w.increment(life, op.column, op.by)
          break
        case 'editText':
          w.spliceText(life, op.column, op.index, op.delete, op.insert)
          break
        case 'put':
        case 'update':
          for (const [column, value] of Object.entries(op.values)) {
            const kind: ColumnKind = schema.columns[column] ?? 'json'
            if (kind === 'counter') {
              // Setting a counter adds the difference, so concurrent sets and increments all count.
              w.increment(life, column, (value as number) - (current?.counters.get(column) ?? 0))
            } else if (kind === 'text') {
              // The smallest edit from the current text to the new one, so concurrent puts and
              // edits merge as text edits do (a whole-text replace would keep both new values).
              for (const s of textSplices(current?.texts.get(column) ?? '', value as string)) w.spliceText(life, column, s.index, s.delete, s.insert)
            } else {
              w.setRegister(life, column, value)
            }
          }
          break
      }
    })
  }

  applyDelta(delta: Uint8Array): ApplyResult {
    this.memo = null
    return this.doc.applyDelta(delta)
  }

  /** The row as a plain object; every schema column is present (null, 0 or "" when unset). */
  state(schema?: ResolvedSchema): RowState {
    const memo = this.memo
    if (memo !== null && memo.schema === schema) return copyState(memo.state)
    const state = this.build(schema)
    this.memo = { schema, state }
    return copyState(state)
  }

  private build(schema: ResolvedSchema | undefined): RowState {
    const life = this.doc.causalLength()
    if (!isAlive(life)) return { alive: false, life, values: {} }
    const cells = this.doc.read(life)
    const values: Record<string, unknown> = schema === undefined ? {} : { ...defaults(schema) }
    // Cells of columns this replica's schema does not know yet (from a newer peer) are kept.
    for (const [column, value] of cells.registers) values[column] = value
    for (const [column, value] of cells.counters) values[column] = value
    for (const [column, value] of cells.texts) values[column] = value
    return { alive: true, life, values }
  }

  /** Losing values of concurrent register writes in the current life (Automerge only). */
  conflicts(): Record<string, unknown[]> {
    const life = this.doc.causalLength()
    if (!isAlive(life)) return {}
    return Object.fromEntries(this.doc.conflicts(life))
  }

  version(): Uint8Array {
    return this.doc.version()
  }

  deltaSince(version: Uint8Array): Uint8Array | null {
    return this.doc.deltaSince(version)
  }

  /** True when a replica at `version` certainly has nothing this row lacks (see EngineDoc.holdsAll). */
  holdsAll(version: Uint8Array): boolean {
    return this.doc.holdsAll(version)
  }

  encode(): Uint8Array {
    return this.doc.encode()
  }

  /** Canonical digest of the merged state: equal state ⇒ equal digest, on every replica. */
  digest(): Uint8Array {
    return hash128(this.doc.canonicalState())
  }

  /** The row's digest-tree contribution: one hash of its key and its canonical state. */
  rowHash(key: string): Uint8Array {
    return rowHash(key, this.doc.canonicalState())
  }

  dispose(): void {
    this.doc.dispose()
  }
}
