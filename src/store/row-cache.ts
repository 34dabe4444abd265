/** Anything holding memory that must be released explicitly (Automerge's WASM heap). */
export interface Disposable {
  dispose(): void
  /** Cache units this item takes (default 1): an Automerge row holds ~10× a Yjs row's memory. */
  readonly weight?: number
}

interface Entry<T> {
  readonly doc: T
  pins: number
  cached: boolean
}

/**
 * A bounded LRU of live row documents; every other row stays encoded in LevelDB. A document in
 * use across an await (by a write batch) is pinned: eviction then only drops it from the cache,
 * and its engine memory is released when the last pin goes.
 */
export class RowCache<T extends Disposable> {
  private readonly entries = new Map<string, Entry<T>>()
  private weight = 0
  private readonly entryOf = new WeakMap<T, Entry<T>>()

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.size
  }

  /** Cache units in use (see Disposable.weight). */
  get load(): number {
    return this.weight
  }

  get(id: string): T | undefined {
    const entry = this.entries.get(id)
    if (entry === undefined) return undefined
    // Re-insert to mark as most recently used.
    this.entries.delete(id)
    this.entries.set(id, entry)
    return entry.doc
  }

  /** Installs `doc` as the live document for `id`, releasing any other one it replaces. */
  set(id: string, doc: T): void {
    const old = this.entries.get(id)
    if (old !== undefined) {
      this.entries.delete(id)
      this.weight -= old.doc.weight ?? 1
      if (old.doc !== doc) this.release(old)
    }
    const entry = this.entry(doc)
    entry.cached = true
    this.entries.set(id, entry)
    this.weight += doc.weight ?? 1
    while (this.weight > this.capacity && this.entries.size > 1) {
      const [oldestId, oldest] = this.entries.entries().next().value as [string, Entry<T>]
      this.entries.delete(oldestId)
      this.weight -= oldest.doc.weight ?? 1
      this.release(oldest)
    }
  }

  /** Drops a document whose in-memory state may be ahead of disk (a failed write). */
  delete(id: string): void {
    const entry = this.entries.get(id)
    if (entry === undefined) return
    this.entries.delete(id)
    this.weight -= entry.doc.weight ?? 1
    this.release(entry)
  }

  pin(doc: T): void {
    this.entry(doc).pins++
  }

  /** Ends a use; a document that is not (or no longer) cached is released with its last pin. */
  unpin(doc: T): void {
    const entry = this.entry(doc)
    entry.pins--
    if (entry.pins <= 0 && !entry.cached) doc.dispose()
  }

  clear(): void {
    for (const entry of this.entries.values()) this.release(entry)
    this.entries.clear()
    this.weight = 0
  }

  private entry(doc: T): Entry<T> {
    let entry = this.entryOf.get(doc)
    if (entry === undefined) {
      entry = { doc, pins: 0, cached: false }
      this.entryOf.set(doc, entry)
    }
    return entry
  }

  private release(entry: Entry<T>): void {
    entry.cached = false
    if (entry.pins <= 0) entry.doc.dispose()
  }
}
