import { mkdir } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { Level } from 'level'
import { AUTOMERGE_CACHE_WEIGHT, DEFAULT_ROW_CACHE_SIZE, DEFAULT_TREE_CACHE_SIZE, DIGEST_BYTES, MAX_DELTA_BYTES, MAX_ROW_BYTES, MAX_WRITES_PER_BATCH } from '../constants.js'
import { DeltaError, PartitionError, RowNotFoundError, ValidationError, RowTooLargeError, ShoalError, StoreClosedError, StoreCorruptError, StoreOpenError, StoreWriteError } from '../errors.js'
import { DigestTree, LEAF_COUNT, leafOf } from '../table/digest-tree.js'
import { equalBytes, fromHex, toHex } from '../table/hash.js'
import type { ApplyResult, EngineContext } from '../table/engine.js'
import { engineFor } from '../table/engines.js'
import { RowDocument, type RowOp, type RowState } from '../table/row.js'
import { keyColumnValue, type EngineName, type ResolvedSchema } from '../table/schema.js'
import { bucketKey, countKey, decodeRecord, encodeRecord, indexKey, leafKey, leafName, partitionPrefix, prefixEnd, rowKey, SEP } from './layout.js'
import { RowCache } from './row-cache.js'

export interface StoreOptions {
  /** The data folder; created if missing. */
  dir: string
  /** This replica's identity, fixed at the store's creation (later the libp2p peer id). */
  actor?: string
  /** Live row documents kept in memory. */
  rowCacheSize?: number
  /** Digest trees kept in memory. */
  treeCacheSize?: number
  /**
   * fsync every batch before acknowledging (default true): an acknowledged write survives power
   * loss, not only a killed process. Group commit amortises the fsync over concurrent writes.
   */
  syncWrites?: boolean
  /** Wall-clock seconds for change metadata; injectable for simulations. */
  nowSeconds?: () => number
}

/** A committed change to one row, local or from a peer. */
export interface ChangeEvent {
  table: string
  partition: string
  key: string
  /** 'local', or the id of the peer the delta came from. */
  origin: string
  alive: boolean
  /** The row after the change (null when deleted). */
  row: Readonly<Record<string, unknown>> | null
  /** The engine delta of this change: what a peer needs to apply it. */
  delta: Uint8Array
  /** The `source` an atomic batch was written with (writeAtomic), so its writer can tell its own changes. */
  source?: string
}

export type ChangeListener = (event: ChangeEvent) => void

export interface LocalWriteResult {
  partition: string
  changed: boolean
  state: RowState
}

export interface StoredRow {
  partition: string
  key: string
  state: RowState
}

export interface CheckReport {
  rows: number
  /** Empty when the store is consistent. */
  problems: string[]
}

export interface PartitionSummary {
  partition: string
  rows: number
  digest: Uint8Array
}

interface LocalJob {
  kind: 'local'
  schema: ResolvedSchema
  key: string
  /** Known partition ('' for unpartitioned tables), or null to look it up by key. */
  partition: string | null
  /** The partition a put names in its values; used when the row does not exist yet. */
  createPartition: string | null
  op: RowOp
  /** Set for the writes of an atomic batch: carried into their change events. */
  source?: string
  resolve: (result: LocalWriteResult) => void
  reject: (error: unknown) => void
}

interface RemoteJob {
  kind: 'remote'
  schema: ResolvedSchema
  key: string
  partition: string
  delta: Uint8Array
  origin: string
  resolve: (result: ApplyResult) => void
  reject: (error: unknown) => void
}

type Job = LocalJob | RemoteJob

// ---- atomic batches with a bookmark (used by the SQL bridge) ------------------------------------
/*
 * writeAtomic() commits many local writes and a named bookmark in ONE LevelDB batch: after a crash
 * either all of them are on disk or none is. The SQL bridge records which captured SQL changes a
 * batch applied in the bookmark, so a change is applied exactly once even when the peer is killed
 * between the store write and the deletion of the captured change. Writes refused on their own
 * (RowNotFoundError, ValidationError, PartitionError…) are reported per write and do not stop the
 * others; a failed disk write rejects the whole batch and stores nothing (bookmark included).
 */

/** One write of an atomic batch (validated by the caller, as for writeLocal). */
export interface AtomicWrite {
  schema: ResolvedSchema
  key: string
  partition: string | null
  createPartition: string | null
  op: RowOp
}

/** A named string committed with an atomic batch; value null removes it. */
export interface Bookmark {
  name: string
  value: string | null
}

export type AtomicWriteResult = { ok: true; result: LocalWriteResult } | { ok: false; error: unknown }

interface AtomicJob {
  kind: 'atomic'
  writes: LocalJob[]
  bookmark: Bookmark | null
  results: AtomicWriteResult[]
  resolve: (results: AtomicWriteResult[]) => void
  reject: (error: unknown) => void
}

/** Bookmark names: short printable strings (they are LevelDB keys under meta). */
export const MAX_BOOKMARK_NAME_BYTES = 200
/** A bookmark value is read whole at start; keep it small (a few KB of ids or digests). */
export const MAX_BOOKMARK_VALUE_BYTES = 1024 * 1024
/** Writes in one atomic batch: one LevelDB batch must stay a bounded amount of memory. */
export const MAX_ATOMIC_WRITES = 4096

function bookmarkKey(name: string): string {
  return `bookmark${SEP}${name}`
}
// ---- end of atomic batch types ------------------------------------------------------------------

/** A row held in memory: its document plus what is on disk for it. */
class LiveRow {
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

interface Touched {
  schema: ResolvedSchema
  partition: string
  key: string
  id: string
  live: LiveRow | null
  /** Set when the stored row could not be decoded: jobs on it are refused, the others go on. */
  loadError: Error | null
  deltas: Uint8Array[]
  dirty: boolean
}

function identityValues(schema: ResolvedSchema, key: string, partition: string): Record<string, unknown> {
  const values: Record<string, unknown> = { [schema.primaryKey]: keyColumnValue(schema.columns[schema.primaryKey]!, key) }
  if (schema.partitionBy !== null) values[schema.partitionBy] = keyColumnValue(schema.columns[schema.partitionBy]!, partition)
  return values
}

/** Key → partition answers remembered before the memo starts over. */
const PARTITION_MEMO_SIZE = 100_000

/** The on-disk layout version (layout.ts); bumped when it changes incompatibly. */
export const STORE_FORMAT = 1
/** Bucket keys read per rowRange call before the byte budget is applied. */
const RANGE_KEYS_PER_READ = 2048

const ZERO_HASH = new Uint8Array(DIGEST_BYTES)
const utf8 = new TextEncoder()

type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(DIGEST_BYTES)
  for (let i = 0; i < DIGEST_BYTES; i++) out[i] = a[i]! ^ b[i]!
  return out
}

function isZero(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false
  return true
}

/**
 * Rows of every table in one LevelDB database. Writes go through one queue: each batch applies
 * its operations to the live documents, then writes rows, digest leaves and counts in one atomic
 * LevelDB batch, and only then acknowledges them (group commit). Reads see committed state only.
 */
export class Store {
  private readonly rows
  private readonly buckets
  private readonly leaves
  private readonly keys
  private readonly meta
  private readonly cache: RowCache<LiveRow>
  private readonly trees = new Map<string, DigestTree>()
  private readonly counts = new Map<string, number>()
  /** Digest tree root per table␀partition, kept current in memory and in meta. */
  private readonly roots = new Map<string, Uint8Array>()
  /** Recently used key → partition answers from the key index (table␀key → partition). */
  private readonly partitionOf = new Map<string, string>()
  private readonly prefix: { rows: string; buckets: string; leaves: string; keys: string; meta: string }
  private readonly listeners = new Set<ChangeListener>()
  private queue: Array<Job | AtomicJob> = []
  private draining: Promise<void> | null = null
  /** The batch being written now; reads of its rows wait for it. */
  private flushing: Promise<void> | null = null
  /** Row ids being written by the batch in flight; reads of them wait for its commit. */
  private inFlight = new Set<string>()
  /** Bumped at every commit, so a read that raced a commit does not cache what it read. */
  private commitSeq = 0
  private closed = false
  private readonly context: EngineContext

  private constructor(
    private readonly db: Level<string, Uint8Array>,
    readonly dir: string,
    readonly actor: string,
    private readonly options: StoreOptions,
  ) {
    const sub = (name: string) => db.sublevel<string, Uint8Array>(name, { keyEncoding: 'utf8', valueEncoding: 'view' })
    this.rows = sub('rows')
    this.buckets = sub('buckets')
    this.leaves = sub('leaves')
    this.keys = db.sublevel<string, string>('keys', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.meta = db.sublevel<string, string>('meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.prefix = { rows: this.rows.prefix, buckets: this.buckets.prefix, leaves: this.leaves.prefix, keys: this.keys.prefix, meta: this.meta.prefix }
    this.cache = new RowCache<LiveRow>(options.rowCacheSize ?? DEFAULT_ROW_CACHE_SIZE)
    this.context = options.nowSeconds === undefined ? { actor } : { actor, nowSeconds: options.nowSeconds }
  }

  static async open(options: StoreOptions): Promise<Store> {
    const dir = options.dir
    try {
      await mkdir(dir, { recursive: true })
    } catch (error) {
      throw new StoreOpenError(`cannot create data folder '${dir}': ${(error as Error).message}`, { cause: error })
    }
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    try {
      await db.open()
    } catch (error) {
      const cause = (error as { cause?: Error }).cause
      const detail = cause?.message ?? (error as Error).message
      if (/lock/i.test(detail)) {
        throw new StoreOpenError(
          `data folder '${dir}' is in use by another process (its LevelDB lock is held); stop the other Shoal peer or choose another data folder`,
          { cause: error },
        )
      }
      const hint = /no space left/i.test(detail) ? '; LevelDB needs free disk space to open (it compacts on open): free some and retry' : ''
      throw new StoreOpenError(`cannot open data folder '${dir}': ${detail}${hint}`, { cause: error })
    }
    const meta = db.sublevel<string, string>('meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const format = await meta.get('format')
    let actor = await meta.get('actor')
    if (format !== undefined && format !== String(STORE_FORMAT)) {
      await db.close()
      throw new StoreOpenError(`data folder '${dir}' is in store format ${format}; this Shoal reads format ${STORE_FORMAT}; use the Shoal version that wrote it`)
    }
    if (format === undefined && actor !== undefined) {
      await db.close()
      throw new StoreOpenError(`data folder '${dir}' was written by a pre-release Shoal without a format marker; start from an empty folder`)
    }
    if (actor === undefined) {
      actor = options.actor ?? randomUUID()
      await db.batch([
        { type: 'put', key: 'format', value: String(STORE_FORMAT) },
        { type: 'put', key: 'actor', value: actor },
      ].map((op) => ({ ...op, sublevel: meta })) as never, { sync: true } as object)
    } else if (options.actor !== undefined && options.actor !== actor) {
      await db.close()
      throw new StoreOpenError(`data folder '${dir}' belongs to replica '${actor}', not '${options.actor}'; use that folder's own identity or another folder`)
    }
    const store = new Store(db, dir, actor, options)
    for await (const [key, value] of meta.iterator({ gte: `count${SEP}`, lt: prefixEnd(`count${SEP}`) })) {
      store.counts.set(key.slice(`count${SEP}`.length), Number(value))
    }
    for await (const [key, value] of meta.iterator({ gte: `root${SEP}`, lt: prefixEnd(`root${SEP}`) })) {
      store.roots.set(key.slice(`root${SEP}`.length), fromHex(value))
    }
    return store
  }

  // ---- writes --------------------------------------------------------------------------------

  /** Applies one local operation durably; resolves after its batch is on disk. */
  writeLocal(schema: ResolvedSchema, key: string, partition: string | null, createPartition: string | null, op: RowOp): Promise<LocalWriteResult> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'local', schema, key, partition, createPartition, op, resolve, reject })
    })
  }

  /** Merges a delta from a peer durably. Idempotent; refuses oversized or undecodable deltas. */
  applyRemote(schema: ResolvedSchema, partition: string, key: string, delta: Uint8Array, origin: string): Promise<ApplyResult> {
    if (delta.length > MAX_DELTA_BYTES) {
      return Promise.reject(new DeltaError(`delta for row '${key}' of table '${schema.name}' is ${delta.length} bytes, over the ${MAX_DELTA_BYTES}-byte limit`))
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'remote', schema, key, partition, delta, origin, resolve, reject })
    })
  }

  /**
   * Commits `writes` and (if given) `bookmark` in one atomic LevelDB batch; resolves after it is on
   * disk with one result per write, in order. See "atomic batches" above.
   */
  writeAtomic(writes: readonly AtomicWrite[], options: { bookmark?: Bookmark; source?: string } = {}): Promise<AtomicWriteResult[]> {
    if (writes.length > MAX_ATOMIC_WRITES) {
      return Promise.reject(new ValidationError(`an atomic batch holds at most ${MAX_ATOMIC_WRITES} writes, got ${writes.length}; split it`))
    }
    const bookmark = options.bookmark ?? null
    if (bookmark !== null) {
      if (typeof bookmark.name !== 'string' || bookmark.name === '' || bookmark.name.includes(SEP) || utf8.encode(bookmark.name).length > MAX_BOOKMARK_NAME_BYTES) {
        return Promise.reject(new ValidationError(`a bookmark name is a non-empty string of at most ${MAX_BOOKMARK_NAME_BYTES} bytes without NUL`))
      }
      if (bookmark.value !== null && (typeof bookmark.value !== 'string' || utf8.encode(bookmark.value).length > MAX_BOOKMARK_VALUE_BYTES)) {
        return Promise.reject(new ValidationError(`a bookmark value is a string of at most ${MAX_BOOKMARK_VALUE_BYTES} bytes, or null`))
      }
    }
    return new Promise((resolve, reject) => {
      const results: AtomicWriteResult[] = new Array(writes.length)
      const jobs: LocalJob[] = writes.map((w, i) => ({
        kind: 'local',
        schema: w.schema,
        key: w.key,
        partition: w.partition,
        createPartition: w.createPartition,
        op: w.op,
        ...(options.source === undefined ? {} : { source: options.source }),
        resolve: (result) => (results[i] = { ok: true, result }),
        reject: (error) => (results[i] = { ok: false, error }),
      }))
      this.enqueue({ kind: 'atomic', writes: jobs, bookmark, results, resolve, reject })
    })
  }

  /** The committed value of a bookmark written by writeAtomic, or null. */
  async bookmark(name: string): Promise<string | null> {
    this.assertOpen()
    return (await this.meta.get(bookmarkKey(name))) ?? null
  }

  private enqueue(job: Job | AtomicJob): void {
    if (this.closed) {
      job.reject(new StoreClosedError())
      return
    }
    this.queue.push(job)
    // Start on a microtask, so operations issued in the same tick share one batch.
    this.draining ??= Promise.resolve().then(() => this.drain())
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_WRITES_PER_BATCH)
        this.flushing = this.flush(batch)
        await this.flushing
        this.flushing = null
      }
    } finally {
      this.draining = null
    }
  }

  private async flush(queued: Array<Job | AtomicJob>): Promise<void> {
    // An atomic batch's writes join this flush like any other writes; only its bookmark and its
    // single answer are its own.
    const atomic = queued.filter((j): j is AtomicJob => j.kind === 'atomic')
    const jobs: Job[] = atomic.length === 0 ? (queued as Job[]) : queued.flatMap((j) => (j.kind === 'atomic' ? j.writes : [j]))
    const bookmarks = atomic.flatMap((j) => (j.bookmark === null ? [] : [j.bookmark]))
    const touched = new Map<string, Touched>()
    const targets = new Map<Job, Touched>()
    const refused = new Set<Job>()

    // 1. Find each row's partition (a key's partition is fixed when the row is created), in
    //    job order, so a row created earlier in this batch is found by the jobs after it.
    const lookups = new Set<string>()
    for (const job of jobs) {
      if (job.kind === 'local' && job.schema.partitionBy !== null && (job.partition === null || job.op.op === 'put')) {
        lookups.add(indexKey(job.schema.name, job.key))
      }
    }
    const existing = new Map<string, string | null>()
    /** What the key index held before this batch, for keys looked up above (commit reuses it). */
    const indexed = new Map<string, string | null>()
    const unknown: string[] = []
    for (const k of lookups) {
      const known = this.partitionOf.get(k)
      if (known !== undefined) existing.set(k, known)
      else unknown.push(k)
    }
    if (unknown.length > 0) {
      const found = await this.keys.getMany(unknown)
      unknown.forEach((k, i) => {
        const p = found[i] ?? null
        existing.set(k, p)
        if (p !== null) this.rememberPartition(k, p)
      })
    }
    for (const job of jobs) {
      try {
        const k = indexKey(job.schema.name, job.key)
        const partition = this.partitionFor(job, existing.get(k) ?? null)
        if (partition === null) continue
        if (job.kind === 'local' && job.op.op === 'put' && !existing.get(k)) {
          if (!indexed.has(k)) indexed.set(k, existing.get(k) ?? null)
          existing.set(k, partition)
        }
        const id = rowKey(job.schema.name, partition, job.key)
        let t = touched.get(id)
        if (t === undefined) {
          t = { schema: job.schema, partition, key: job.key, id, live: null, loadError: null, deltas: [], dirty: false }
          touched.set(id, t)
        }
        targets.set(job, t)
      } catch (error) {
        refused.add(job)
        job.reject(error)
      }
    }
    for (const id of touched.keys()) this.inFlight.add(id)

    try {
      // 2. Load the rows and digest trees involved.
      await this.loadTouched([...touched.values()])

      // 3. Apply operations in order.
      const done: Array<() => void> = []
      const events: ChangeEvent[] = []
      for (const job of jobs) {
        const t = targets.get(job)
        if (refused.has(job)) continue
        if (t === undefined) {
          if (job.kind === 'local' && job.op.op === 'delete') {
            job.resolve({ partition: '', changed: false, state: { alive: false, life: 0, values: {} } })
          }
          continue
        }
        if (t.loadError !== null) {
          job.reject(t.loadError)
          continue
        }
        try {
          if (job.kind === 'local') this.applyLocal(job, t, done, events)
          else this.applyRemoteJob(job, t, done, events)
        } catch (error) {
          // Refusals found before changing anything leave the document as it was; anything
          // else (a delta that failed half-way, a row grown too large) is undone from disk.
          if (!(error instanceof RowNotFoundError || error instanceof ValidationError)) await this.rebuild(t)
          job.reject(error)
        }
      }

      // 4. One atomic batch for everything that changed.
      await this.commit(
        [...touched.values()].filter((t) => t.dirty),
        indexed,
        bookmarks,
      )
      for (const resolve of done) resolve()
      for (const a of atomic) a.resolve(a.results)
      for (const event of events) this.emit(event)
    } catch (error) {
      for (const t of touched.values()) this.cache.delete(t.id)
      const detail = (error as Error).message
      const hint = /no space left/i.test(detail) ? `; free space on the disk holding '${this.dir}' and retry` : ''
      const failure = error instanceof ShoalError ? error : new StoreWriteError(`write to '${this.dir}' failed: ${detail}; nothing of this batch was applied${hint}`, { cause: error })
      for (const job of jobs) job.reject(failure)
      for (const a of atomic) a.reject(failure)
    } finally {
      for (const t of touched.values()) {
        this.inFlight.delete(t.id)
        if (t.live !== null) this.cache.unpin(t.live)
      }
      this.evictTrees()
    }
  }

  /** The partition a job addresses, given where its key already lives (null: nowhere yet). */
  private partitionFor(job: Job, existing: string | null): string | null {
    const { schema } = job
    if (job.kind === 'remote') return job.partition
    if (schema.partitionBy === null) return ''
    if (job.op.op !== 'put') {
      if (job.partition !== null) return job.partition
      if (existing !== null) return existing
      if (job.op.op === 'delete') return null
      throw new RowNotFoundError(schema.name, job.key)
    }
    const wanted = job.createPartition ?? job.partition
    if (existing !== null) {
      if (wanted !== null && wanted !== existing) {
        throw new PartitionError(
          `row '${job.key}' of table '${schema.name}' is in partition '${existing}'; its '${schema.partitionBy}' cannot change to '${wanted}'`,
        )
      }
      return existing
    }
    if (wanted === null) {
      throw new PartitionError(`table '${schema.name}' is partitioned by '${schema.partitionBy}': include '${schema.partitionBy}' in the row to create '${job.key}'`)
    }
    return wanted
  }

  /** The partition holding `key` (the first one seen, if concurrent creations put it in several). */
  async findPartition(table: string, key: string): Promise<string | null> {
    const k = indexKey(table, key)
    const known = this.partitionOf.get(k)
    if (known !== undefined) return known
    const found = (await this.keys.get(k)) ?? null
    if (found !== null) this.rememberPartition(k, found)
    return found
  }

  /** A key's partition never changes once indexed, so remembering it needs no invalidation. */
  private rememberPartition(k: string, partition: string): void {
    if (this.partitionOf.size >= PARTITION_MEMO_SIZE) this.partitionOf.clear()
    this.partitionOf.set(k, partition)
  }

  private async loadTouched(list: Touched[]): Promise<void> {
    const missing: Touched[] = []
    for (const t of list) {
      const live = this.cache.get(t.id)
      if (live !== undefined) {
        t.live = live
        this.cache.pin(live)
      } else {
        missing.push(t)
      }
    }
    if (missing.length > 0) {
      const values = await this.rows.getMany(missing.map((t) => t.id))
      missing.forEach((t, i) => {
        const bytes = values[i]
        if (bytes === undefined) return
        try {
          t.live = this.decodeLive(t.schema, t.key, t.id, bytes)
          this.cache.pin(t.live)
        } catch (error) {
          t.loadError = error as Error
        }
      })
    }
  }

  private decodeLive(schema: ResolvedSchema, key: string, id: string, bytes: Uint8Array): LiveRow {
    const record = decodeRecord(bytes, id)
    const doc = this.decodeDoc(schema, key, id, record.doc)
    return new LiveRow(doc, record.rowHash.slice(), record.alive, bytes.length, schema.engine)
  }

  private decodeDoc(schema: ResolvedSchema, key: string, id: string, bytes: Uint8Array): RowDocument {
    try {
      return RowDocument.decode(engineFor(schema.engine), bytes, this.context, schema.name, key)
    } catch (error) {
      throw new StoreCorruptError(
        `stored row '${key}' of table '${schema.name}' (partition '${id.split(SEP)[1]}') cannot be decoded as a ${schema.engine} document; ` +
          `run \`shoal check\` and restore the data folder from a backup or a peer`,
        { cause: error },
      )
    }
  }

  private ensureLive(t: Touched): LiveRow {
    if (t.live === null) {
      t.live = new LiveRow(RowDocument.create(engineFor(t.schema.engine), this.context, t.schema.name, t.key), null, false, 0, t.schema.engine)
      this.cache.pin(t.live)
    }
    return t.live
  }

  private applyLocal(job: LocalJob, t: Touched, done: Array<() => void>, events: ChangeEvent[]): void {
    if (t.live === null && job.op.op !== 'put') {
      if (job.op.op === 'delete') {
        done.push(() => job.resolve({ partition: t.partition, changed: false, state: { alive: false, life: 0, values: {} } }))
        return
      }
      throw new RowNotFoundError(job.schema.name, job.key)
    }
    const live = this.ensureLive(t)
    let op = job.op
    if (op.op === 'put' && !live.doc.alive) {
      // A new life starts from empty columns: write the key and partition columns into it.
      op = { op: 'put', values: { ...identityValues(job.schema, t.key, t.partition), ...op.values } }
    }
    const delta = live.doc.apply(op, job.schema)
    if (delta !== null) this.recordDelta(t, delta)
    const state = live.doc.state(job.schema)
    done.push(() => job.resolve({ partition: t.partition, changed: delta !== null, state }))
    if (delta !== null) {
      events.push({
        table: t.schema.name,
        partition: t.partition,
        key: t.key,
        origin: 'local',
        alive: state.alive,
        row: state.alive ? state.values : null,
        delta,
        ...(job.source === undefined ? {} : { source: job.source }),
      })
    }
  }

  private applyRemoteJob(job: RemoteJob, t: Touched, done: Array<() => void>, events: ChangeEvent[]): void {
    const live = this.ensureLive(t)
    const result = live.doc.applyDelta(job.delta)
    if (result !== 'unchanged') this.recordDelta(t, job.delta)
    done.push(() => job.resolve(result))
    if (result === 'changed') {
      const state = live.doc.state(job.schema)
      events.push({ table: t.schema.name, partition: t.partition, key: t.key, origin: job.origin, alive: state.alive, row: state.alive ? state.values : null, delta: job.delta })
    }
  }

  /** Notes a change to the row and refuses it if the row would outgrow MAX_ROW_BYTES. */
  private recordDelta(t: Touched, delta: Uint8Array): void {
    t.deltas.push(delta)
    t.dirty = true
    const estimate = t.live!.storedBytes + t.deltas.reduce((sum, d) => sum + d.length, 0)
    if (estimate > MAX_ROW_BYTES) {
      const exact = t.live!.doc.encode().length
      if (exact > MAX_ROW_BYTES) {
        t.deltas.pop()
        throw new RowTooLargeError(t.schema.name, t.key, exact, MAX_ROW_BYTES)
      }
    }
  }

  /** Restores a row's document to disk state plus this batch's accepted changes (after a refusal). */
  private async rebuild(t: Touched): Promise<void> {
    if (t.live === null) return
    const old = t.live
    // Disk cannot have changed since this batch began: batches are the only writers, one at a time.
    const stored = (await this.rows.get(t.id)) ?? null
    let live: LiveRow | null = null
    if (stored !== null) live = this.decodeLive(t.schema, t.key, t.id, stored)
    else if (t.deltas.length > 0) live = new LiveRow(RowDocument.create(engineFor(t.schema.engine), this.context, t.schema.name, t.key), null, false, 0, t.schema.engine)
    if (live !== null) {
      for (const d of t.deltas) live.doc.applyDelta(d)
      this.cache.pin(live)
    }
    this.cache.delete(t.id)
    this.cache.unpin(old)
    t.live = live
    t.dirty = t.deltas.length > 0
  }

  private async commit(dirty: Touched[], indexedBefore: ReadonlyMap<string, string | null>, bookmarks: readonly Bookmark[] = []): Promise<void> {
    if (dirty.length === 0 && bookmarks.length === 0) return
    // One array batch on the root database with prefixed keys: abstract-level's per-operation
    // sublevel handling costs ~3x the write itself (measured in bench/README.md).
    const ops: BatchOp[] = []
    const leafChanges = new Map<string, { ck: string; leaf: number; change: Uint8Array }>()
    const countChanges = new Map<string, number>()
    const updates: Array<{ t: Touched; rowHash: Uint8Array; alive: boolean; size: number }> = []
    const created: Touched[] = []
    let indexedKeys = new Set<string>()
    for (const t of dirty) {
      const live = t.live!
      const rowHash = live.doc.rowHash(t.key)
      const alive = live.doc.alive
      const record = encodeRecord({ alive, rowHash, doc: live.doc.encode() })
      ops.push({ type: 'put', key: this.prefix.rows + t.id, value: record })
      const before = live.rowHash
      const ck = `${t.schema.name}${SEP}${t.partition}`
      if (before === null || !equalBytes(before, rowHash)) {
        const leaf = leafOf(t.key)
        ops.push({ type: 'put', key: this.prefix.buckets + bucketKey(t.schema.name, t.partition, leaf, t.key), value: rowHash })
        const lk = leafKey(t.schema.name, t.partition, leaf)
        const prev = leafChanges.get(lk)?.change ?? ZERO_HASH
        leafChanges.set(lk, { ck, leaf, change: xor(prev, xor(before ?? ZERO_HASH, rowHash)) })
      }
      if (before === null && t.schema.partitionBy !== null) created.push(t)
      const countChange = (alive ? 1 : 0) - (live.alive ? 1 : 0)
      // A row new on disk also records its partition (count entries list a table's partitions).
      if (countChange !== 0 || before === null) countChanges.set(ck, (countChanges.get(ck) ?? 0) + countChange)
      updates.push({ t, rowHash, alive, size: record.length })
    }
    if (created.length > 0) {
      const keys = created.map((t) => indexKey(t.schema.name, t.key))
      // Rows created by a local put were looked up in flush(); only remote creations need a read.
      const unknown = [...new Set(keys.filter((k) => !indexedBefore.has(k)))]
      const read = unknown.length === 0 ? [] : await this.keys.getMany(unknown)
      const before = new Map<string, string | null>(indexedBefore)
      unknown.forEach((k, i) => before.set(k, read[i] ?? null))
      const added = new Set<string>()
      keys.forEach((k, i) => {
        if (before.get(k) != null || added.has(k)) return
        added.add(k)
        ops.push({ type: 'put', key: this.prefix.keys + k, value: utf8.encode(created[i]!.partition) })
      })
      indexedKeys = added
    }
    // New leaf values: from the cached tree where there is one, else the stored leaf.
    const leafKeys = [...leafChanges.keys()]
    const uncached = leafKeys.filter((lk) => !this.trees.has(leafChanges.get(lk)!.ck))
    const stored = uncached.length === 0 ? [] : await this.leaves.getMany(uncached)
    const storedLeaf = new Map(uncached.map((lk, i) => [lk, stored[i]]))
    const rootChanges = new Map<string, Uint8Array>()
    for (const [lk, { ck, leaf, change }] of leafChanges) {
      const current = this.trees.get(ck)?.leaf(leaf) ?? storedLeaf.get(lk) ?? ZERO_HASH
      const value = xor(current, change)
      if (isZero(value)) ops.push({ type: 'del', key: this.prefix.leaves + lk })
      else ops.push({ type: 'put', key: this.prefix.leaves + lk, value })
      rootChanges.set(ck, xor(rootChanges.get(ck) ?? ZERO_HASH, change))
    }
    const newRoots = new Map<string, Uint8Array>()
    for (const [ck, change] of rootChanges) {
      const root = xor(this.roots.get(ck) ?? ZERO_HASH, change)
      newRoots.set(ck, root)
      ops.push({ type: 'put', key: this.prefix.meta + `root${SEP}${ck}`, value: utf8.encode(toHex(root)) })
    }
    for (const [ck, change] of countChanges) {
      const [table, partition] = ck.split(SEP) as [string, string]
      ops.push({ type: 'put', key: this.prefix.meta + countKey(table, partition), value: utf8.encode(String((this.counts.get(ck) ?? 0) + change)) })
    }
    for (const b of bookmarks) {
      ops.push(b.value === null ? { type: 'del', key: this.prefix.meta + bookmarkKey(b.name) } : { type: 'put', key: this.prefix.meta + bookmarkKey(b.name), value: utf8.encode(b.value) })
    }
    const batch = this.db.batch()
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value)
      else batch.del(op.key)
    }
    await batch.write({ sync: this.options.syncWrites ?? true } as object)

    // Durable: now the in-memory views may move.
    this.commitSeq++
    for (const { ck, leaf, change } of leafChanges.values()) this.trees.get(ck)?.apply(leaf, change)
    for (const [ck, root] of newRoots) this.roots.set(ck, root)
    for (const t of created) {
      const k = indexKey(t.schema.name, t.key)
      if (indexedKeys.has(k)) this.rememberPartition(k, t.partition)
    }
    for (const [ck, change] of countChanges) this.counts.set(ck, (this.counts.get(ck) ?? 0) + change)
    for (const { t, rowHash, alive, size } of updates) {
      const live = t.live!
      live.rowHash = rowHash
      live.alive = alive
      live.storedBytes = size
      this.cache.set(t.id, live)
    }
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** The committed state of a row, or null if it was never stored. */
  async read(schema: ResolvedSchema, key: string, partition: string | null): Promise<StoredRow | null> {
    this.assertOpen()
    const p = schema.partitionBy === null ? '' : (partition ?? (await this.findPartition(schema.name, key)))
    if (p === null) return null
    const id = rowKey(schema.name, p, key)
    while (this.inFlight.has(id) && this.flushing !== null) await this.flushing
    const cached = this.cache.get(id)
    if (cached !== undefined) return { partition: p, key, state: cached.doc.state(schema) }
    const seq = this.commitSeq
    const bytes = await this.rows.get(id)
    if (bytes === undefined) return null
    const record = decodeRecord(bytes, id)
    if (!record.alive) return { partition: p, key, state: { alive: false, life: 0, values: {} } }
    const live = this.decodeLive(schema, key, id, bytes)
    const state = live.doc.state(schema)
    if (seq === this.commitSeq && !this.inFlight.has(id) && this.cache.get(id) === undefined) this.cache.set(id, live)
    else live.dispose()
    return { partition: p, key, state }
  }

  /** Live rows in key order, from one partition or (partition null) all of them. */
  async scan(schema: ResolvedSchema, partition: string | null, after: { partition: string; key: string } | null, limit: number): Promise<StoredRow[]> {
    this.assertOpen()
    const prefix = partition === null ? `${schema.name}${SEP}` : partitionPrefix(schema.name, partition)
    const gt = after === null ? undefined : rowKey(schema.name, after.partition, after.key)
    const out: StoredRow[] = []
    const iterator = this.rows.iterator({ ...(gt === undefined ? { gte: prefix } : { gt }), lt: prefixEnd(prefix) })
    try {
      for await (const [id, bytes] of iterator) {
        const record = decodeRecord(bytes, id)
        if (!record.alive) continue
        const rest = id.slice(schema.name.length + 1)
        const cut = rest.indexOf(SEP)
        const p = rest.slice(0, cut)
        const key = rest.slice(cut + 1)
        const cached = this.inFlight.has(id) ? undefined : this.cache.get(id)
        let state: RowState
        if (cached !== undefined) {
          state = cached.doc.state(schema)
        } else {
          // Scans do not fill the cache: one pass over a big table must not evict the hot rows.
          const doc = this.decodeDoc(schema, key, id, record.doc)
          state = doc.state(schema)
          doc.dispose()
        }
        out.push({ partition: p, key, state })
        if (out.length >= limit) break
      }
    } finally {
      await iterator.close()
    }
    return out
  }

  /** Losing values of concurrent register writes (Automerge tables), per column. */
  async conflicts(schema: ResolvedSchema, key: string, partition: string | null): Promise<Record<string, unknown[]> | null> {
    const p = schema.partitionBy === null ? '' : (partition ?? (await this.findPartition(schema.name, key)))
    if (p === null) return null
    const id = rowKey(schema.name, p, key)
    while (this.inFlight.has(id) && this.flushing !== null) await this.flushing
    const bytes = await this.rows.get(id)
    if (bytes === undefined) return null
    const live = this.decodeLive(schema, key, id, bytes)
    const result = live.doc.conflicts()
    live.dispose()
    return result
  }

  // ---- replication surface (used by anti-entropy) ---------------------------------------------

  /** The encoded row document as stored, or null. */
  async encodedRow(table: string, partition: string, key: string): Promise<Uint8Array | null> {
    const bytes = await this.rows.get(rowKey(table, partition, key))
    return bytes === undefined ? null : decodeRecord(bytes, key).doc.slice()
  }

  async digestTree(table: string, partition: string): Promise<DigestTree> {
    return this.tree(table, partition)
  }

  /** Row keys and their leaf contributions in one digest leaf. */
  async leafRows(table: string, partition: string, leaf: number): Promise<Array<{ key: string; rowHash: Uint8Array }>> {
    const prefix = `${table}${SEP}${partition}${SEP}${leaf.toString(16).padStart(4, '0')}${SEP}`
    const out: Array<{ key: string; rowHash: Uint8Array }> = []
    for await (const [k, v] of this.buckets.iterator({ gte: prefix, lt: prefixEnd(prefix) })) out.push({ key: k.slice(prefix.length), rowHash: v })
    return out
  }

  /**
   * Rows of leaves [fromLeaf, toLeaf) in (leaf, key) order, after `after`, as stored (whole
   * encoded documents), up to `limit` rows or about `maxBytes`. For anti-entropy's range transfers
   * (initial load): the walk follows the bucket index, so a resumed walk starts where it stopped.
   */
  async rowRange(
    table: string,
    partition: string,
    fromLeaf: number,
    toLeaf: number,
    after: { leaf: number; key: string } | null,
    maxBytes: number,
  ): Promise<{ rows: Array<{ leaf: number; key: string; doc: Uint8Array }>; next: { leaf: number; key: string } | null }> {
    this.assertOpen()
    const prefix = partitionPrefix(table, partition)
    const range = after === null ? { gte: `${prefix}${leafName(fromLeaf)}${SEP}` } : { gt: bucketKey(table, partition, after.leaf, after.key) }
    const end = toLeaf >= LEAF_COUNT ? prefixEnd(prefix) : `${prefix}${leafName(toLeaf)}${SEP}`
    const keys: Array<{ leaf: number; key: string }> = []
    let more = false
    const iterator = this.buckets.keys({ ...range, lt: end })
    try {
      // Rows are ~150 B; read keys in slices so maxBytes is met without reading far past it.
      for await (const k of iterator) {
        const rest = k.slice(prefix.length)
        keys.push({ leaf: parseInt(rest.slice(0, 4), 16), key: rest.slice(5) })
        if (keys.length >= RANGE_KEYS_PER_READ) {
          more = true
          break
        }
      }
    } finally {
      await iterator.close()
    }
    const rows: Array<{ leaf: number; key: string; doc: Uint8Array }> = []
    let bytes = 0
    let last: { leaf: number; key: string } | null = null
    const values = await this.rows.getMany(keys.map((k) => rowKey(table, partition, k.key)))
    for (let i = 0; i < keys.length; i++) {
      const value = values[i]
      const doc = value === undefined ? null : decodeRecord(value, keys[i]!.key).doc
      if (doc !== null && rows.length > 0 && bytes + doc.length > maxBytes) {
        more = true
        break
      }
      last = keys[i]!
      // A bucket entry without its row cannot be committed (one batch writes both); skip defensively.
      if (doc === null) continue
      rows.push({ ...keys[i]!, doc: doc.slice() })
      bytes += doc.length
    }
    return { rows, next: more ? last : null }
  }

  /** Stored documents of several rows of one partition (null where absent), in one read. */
  async encodedRows(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
    this.assertOpen()
    const values = await this.rows.getMany(keys.map((k) => rowKey(table, partition, k)))
    return values.map((v, i) => (v === undefined ? null : decodeRecord(v, keys[i]!).doc.slice()))
  }

  /**
   * For anti-entropy of a row both replicas hold: this replica's version, and (if `since` is given)
   * what a replica at `since` lacks (null: nothing). Null if the row is not stored here.
   */
  async rowSince(schema: ResolvedSchema, partition: string, key: string, since: Uint8Array | null): Promise<{ version: Uint8Array; delta: Uint8Array | null } | null> {
    this.assertOpen()
    const id = rowKey(schema.name, partition, key)
    // A live cached row answers without decoding (it is the committed state unless a write is in flight).
    const cached = this.inFlight.has(id) ? undefined : this.cache.get(id)
    if (cached !== undefined) return { version: cached.doc.version(), delta: since === null ? null : cached.doc.deltaSince(since) }
    const bytes = await this.rows.get(id)
    if (bytes === undefined) return null
    const doc = this.decodeDoc(schema, key, id, decodeRecord(bytes, id).doc)
    try {
      return { version: doc.version(), delta: since === null ? null : doc.deltaSince(since) }
    } finally {
      doc.dispose()
    }
  }

  /** Partitions of a table that hold rows (live or deleted), with live row counts and digest roots. */
  partitions(table: string): PartitionSummary[] {
    const out: PartitionSummary[] = []
    // A partition holding only deleted rows may have a root but no count entry.
    for (const ck of new Set([...this.counts.keys(), ...this.roots.keys()])) {
      const [t, partition] = ck.split(SEP) as [string, string]
      if (t !== table) continue
      out.push({ partition, rows: this.counts.get(ck) ?? 0, digest: this.roots.get(ck) ?? ZERO_HASH })
    }
    return out.sort((a, b) => (a.partition < b.partition ? -1 : a.partition > b.partition ? 1 : 0))
  }

  rowCount(table: string, partition?: string): number {
    let total = 0
    for (const [ck, rows] of this.counts) {
      const [t, p] = ck.split(SEP) as [string, string]
      if (t === table && (partition === undefined || p === partition)) total += rows
    }
    return total
  }

  /**
   * Verifies the whole store against itself: every row decodes, its stored digest matches its
   * document, and the digest leaves, bucket entries and live counts agree with the rows. Reads
   * everything; meant for `shoal check` and tests, not for the hot path.
   */
  async check(schemaOf: (table: string) => ResolvedSchema | undefined): Promise<CheckReport> {
    this.assertOpen()
    while (this.draining !== null) await this.draining
    const problems: string[] = []
    const leaves = new Map<string, Uint8Array>()
    const counts = new Map<string, number>()
    const buckets = new Map<string, Uint8Array>()
    let rows = 0
    for await (const [id, bytes] of this.rows.iterator()) {
      rows++
      const [table, partition, key] = id.split(SEP) as [string, string, string]
      const schema = schemaOf(table)
      if (schema === undefined) {
        problems.push(`row ${table}/${partition}/${key}: table '${table}' is not in the catalog`)
        continue
      }
      try {
        const record = decodeRecord(bytes, id)
        const doc = RowDocument.decode(engineFor(schema.engine), record.doc, this.context, table, key)
        const rowHash = doc.rowHash(key)
        if (doc.alive !== record.alive) problems.push(`row ${table}/${partition}/${key}: stored alive flag ${record.alive} but document says ${doc.alive}`)
        if (!equalBytes(rowHash, record.rowHash)) problems.push(`row ${table}/${partition}/${key}: stored digest does not match its document`)
        doc.dispose()
        const lk = leafKey(table, partition, leafOf(key))
        leaves.set(lk, xor(leaves.get(lk) ?? ZERO_HASH, rowHash))
        buckets.set(bucketKey(table, partition, leafOf(key), key), rowHash)
        const ck = `${table}${SEP}${partition}`
        counts.set(ck, (counts.get(ck) ?? 0) + (doc.alive ? 1 : 0))
      } catch (error) {
        problems.push(`row ${table}/${partition}/${key}: ${(error as Error).message}`)
      }
    }
    const storedLeaves = new Map<string, Uint8Array>()
    for await (const [k, v] of this.leaves.iterator()) storedLeaves.set(k, v)
    for (const [k, v] of leaves) {
      if (isZero(v)) continue
      const stored = storedLeaves.get(k)
      if (stored === undefined || !equalBytes(stored, v)) problems.push(`digest leaf ${k.split(SEP).join('/')} does not match its rows`)
    }
    for (const k of storedLeaves.keys()) if (!leaves.has(k)) problems.push(`digest leaf ${k.split(SEP).join('/')} has no rows`)
    const roots = new Map<string, Uint8Array>()
    for (const [k, v] of leaves) {
      const ck = k.slice(0, k.lastIndexOf(SEP))
      roots.set(ck, xor(roots.get(ck) ?? ZERO_HASH, v))
    }
    for (const ck of new Set([...roots.keys(), ...this.roots.keys()])) {
      if (!equalBytes(roots.get(ck) ?? ZERO_HASH, this.roots.get(ck) ?? ZERO_HASH)) problems.push(`digest root of ${ck.split(SEP).join('/')} does not match its rows`)
    }
    let bucketEntries = 0
    for await (const [k, v] of this.buckets.iterator()) {
      bucketEntries++
      const expected = buckets.get(k)
      if (expected === undefined || !equalBytes(expected, v)) problems.push(`bucket entry ${k.split(SEP).join('/')} does not match its row`)
    }
    if (bucketEntries !== buckets.size) problems.push(`${buckets.size} rows but ${bucketEntries} bucket entries`)
    for (const [ck, n] of counts) {
      if ((this.counts.get(ck) ?? 0) !== n) problems.push(`partition ${ck.split(SEP).join('/')}: stored live count ${this.counts.get(ck) ?? 0}, rows say ${n}`)
    }
    return { rows, problems }
  }

  // ---- digest trees --------------------------------------------------------------------------

  private async tree(table: string, partition: string): Promise<DigestTree> {
    const id = `${table}${SEP}${partition}`
    const cached = this.trees.get(id)
    if (cached !== undefined) return cached
    const seq = this.commitSeq
    const prefix = `${id}${SEP}`
    const leaves: Array<[number, Uint8Array]> = []
    for await (const [k, v] of this.leaves.iterator({ gte: prefix, lt: prefixEnd(prefix) })) leaves.push([parseInt(k.slice(prefix.length), 16), v])
    const tree = DigestTree.fromLeaves(leaves)
    const raced = this.trees.get(id)
    if (raced !== undefined) return raced
    if (seq === this.commitSeq) this.trees.set(id, tree)
    return tree
  }

  private evictTrees(): void {
    const limit = this.options.treeCacheSize ?? DEFAULT_TREE_CACHE_SIZE
    while (this.trees.size > limit) this.trees.delete(this.trees.keys().next().value!)
  }

  // ---- events and lifecycle --------------------------------------------------------------------

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private emit(event: ChangeEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch (error) {
        // A failing listener must not break the store, the write, or the other listeners.
        console.error(`shoal: a change listener threw on ${event.table}/${event.key}:`, error)
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError()
  }

  get isOpen(): boolean {
    return !this.closed
  }

  /** Finishes queued writes, then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.draining !== null) await this.draining
    this.cache.clear()
    this.trees.clear()
    await this.db.close()
  }
}

