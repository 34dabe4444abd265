import type { EngineName } from './schema.js'

/**
 * What a row engine must provide. Engines store a row as a flat set of named cells, each tagged
 * with the row's *life* (see row.ts): registers, per-row counters and collaborative texts. The
 * row semantics (lives, deletes, validation) are written once, in row.ts, on top of this.
 *
 * Engines are pure: no I/O, no clocks or randomness except what `EngineContext` injects.
 */
export interface EngineDoc {
  /** The row's causal length: the highest life any replica has started (0 = never created). */
  causalLength(): number
  /** Cells of one life. Counters are read as their merged total, texts as plain strings. */
  read(life: number): EngineCells
  /** Every life that holds cells (any order; lives are positive integers as written, or whatever a peer wrote). */
  lives(): number[]
  /** For each register of `life` that has concurrent values, the values that lost (empty if the engine keeps only the winner). */
  conflicts(life: number): Map<string, unknown[]>
  /** Current length of a text cell, in UTF-16 code units (0 if absent). */
  textLength(life: number, column: string): number
  /** Runs the writes as one atomic change; returns its delta, or null when nothing was written. */
  change(writes: (w: EngineWriter) => void): Uint8Array | null
  /** Merges a delta from any replica. Idempotent and order-independent; throws DeltaError on garbage. */
  applyDelta(delta: Uint8Array): ApplyResult
  /** A compact summary of what this replica has, for computing what another replica lacks. */
  version(): Uint8Array
  /** Everything this replica has that a replica at `version` lacks (null if nothing). */
  deltaSince(version: Uint8Array): Uint8Array | null
  /**
   * True only when this replica certainly holds every change a replica at `version` holds, so
   * that replica has nothing to send back (anti-entropy then skips the return trip). False when
   * it cannot tell: a Yjs state vector does not name deletions, so the Yjs engine always says false.
   */
  holdsAll(version: Uint8Array): boolean
  /** The whole row document. */
  encode(): Uint8Array
  /**
   * Canonical bytes identifying the merged state (Yjs: state vector + delete set; Automerge: sorted
   * heads): equal state ⇒ equal bytes, on every replica. Hashed into the row's digest.
   */
  canonicalState(): Uint8Array
  /** Releases engine memory (Automerge's WASM heap); the doc must not be used afterwards. */
  dispose(): void
}

export interface EngineCells {
  registers: Map<string, unknown>
  counters: Map<string, number>
  texts: Map<string, string>
}

export interface EngineWriter {
  setCausalLength(length: number): void
  setRegister(life: number, column: string, value: unknown): void
  increment(life: number, column: string, by: number): void
  spliceText(life: number, column: string, index: number, deleteCount: number, insert: string): void
}

/**
 * `changed`: the merged state moved. `pending`: the delta depends on changes not seen yet; the
 * engine holds it (and it is persisted) until they arrive. `unchanged`: nothing new.
 */
export type ApplyResult = 'changed' | 'pending' | 'unchanged'

export interface EngineContext {
  /** This replica's stable identity (the peer id); engines derive their actor ids from it. */
  actor: string
  /** Wall-clock seconds for change metadata (Automerge history); injected so simulations can drive it. */
  nowSeconds?: () => number
}

export interface RowEngine {
  readonly name: EngineName
  /**
   * Throws DeltaError unless every operation the delta creates is the work of `actor` (the peer id
   * that signed it): a signed change may carry only its author's own operations (docs/trust.md).
   * Deleting others' content is an operation of the deleter, so it passes.
   */
  checkAuthor(delta: Uint8Array, actor: string): void
  create(context: EngineContext): EngineDoc
  /** Throws StoreCorruptError (via the caller) / DeltaError if the bytes are not a row of this engine. */
  decode(bytes: Uint8Array, context: EngineContext): EngineDoc
}
