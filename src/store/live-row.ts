import { AUTOMERGE_CACHE_WEIGHT } from '../constants.js'
import type { RowDocument } from '../table/row.js'
import type { EngineName } from '../table/schema.js'

/** A row held in memory: its document plus what is on disk for it. */
export class LiveRow {
  readonly weight: number

  constructor(
    readonly doc: RowDocument,
    /** The row's digest-leaf contribution as stored (null: not on disk). */
    public rowHash: Uint8Array | null,
    public alive: boolean,
    /** Encoded size on disk, to bound the row size check without re-encoding every change. */
    public storedBytes: number,
    engine: EngineName,
  ) {
    this.weight = engine === 'automerge' ? AUTOMERGE_CACHE_WEIGHT : 1
  }

  dispose(): void {
    this.doc.dispose()
  }
}
