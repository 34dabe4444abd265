// Over 400 lines on purpose: the store's public surface, one short method per operation; the
// work is in write-batch.ts, commit.ts, reads.ts, replication-reads.ts, change-log.ts and check.ts.
import { DEFAULT_ROW_CACHE_SIZE, DEFAULT_TREE_CACHE_SIZE, MAX_DELTA_BYTES, MAX_PARTITIONS_PER_TABLE, MAX_TABLES, MAX_WRITES_PER_BATCH } from '../constants.js'
import { DeltaError, PartitionError, StoreClosedError, StoreOpenError, ValidationError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { CATALOG_SCHEMA } from '../table/catalog.js'
import type { DigestTreeLike } from '../table/digest-tree.js'
import type { ApplyResult, EngineContext } from '../table/engine.js'
import type { RowOp } from '../table/row.js'
import { partitionId } from '../table/ids.js'
import { normalizeKeyValue, type ResolvedSchema } from '../table/schema.js'
import { Catalog } from './catalog.js'
import { checkStore, type CheckReport } from './check.js'
import { ChangeFeed, type FeedAnswer, type FeedMark } from './change-feed.js'
import { ChangeLog, MAX_CHANGESETS_PER_READ, readLoggedChangesets } from './change-log.js'
import { logEntryOf, type ChangesetOutcome } from './changesets.js'
import type { Changeset } from '../trust/changeset.js'
import { engineFor, loadEngine } from '../table/engines.js'
import { StoreCore, type ChangeSigner, type LocalWriteGuard } from './core.js'
import { DigestState, type PartitionSummary } from './digest-state.js'
import { KeyIndex } from './key-index.js'
import type { LiveRow } from './live-row.js'
import { openDatabase } from './open.js'
import { readConflicts, readRow, scanRows, type StoredRow } from './reads.js'
import * as replication from './replication-reads.js'
import type { RowSince, LeafRow } from './replication-reads.js'
import { RowCache } from './row-cache.js'
import { bookmarkKey, checkAtomic, type AtomicOptions, type AtomicWrite, type AtomicWriteResult, type Bookmark } from './atomic.js'
import { runBatch, type ChangeEvent, type Job, type LocalJob, type LocalWriteResult } from './write-batch.js'

export type { ChangeEvent, LocalWriteResult } from './write-batch.js'
export type { AtomicOptions, AtomicWrite, AtomicWriteResult, Bookmark } from './atomic.js'
export { MAX_ATOMIC_WRITES } from './atomic.js'

/** Queued atomic batch: its writes join a group commit together, with its bookmark. */
interface AtomicJob {
  kind: 'atomic'
  writes: LocalJob[]
  bookmark: Bookmark | null
  results: AtomicWriteResult[]
  resolve: (results: AtomicWriteResult[]) => void
  reject: (error: unknown) => void
}
export type { CheckReport } from './check.js'
export type { PartitionSummary } from './digest-state.js'
export type { StoredRow } from './reads.js'
export type { RangeCursor, RangeRow, RowSince, LeafRow } from './replication-reads.js'

export interface StoreOptions {
  /** The data folder; created (mode 0700) if missing. */
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
  /** Where the store reports what it cannot raise to a caller (a listener that threw). */
  logger?: Logger
  /** Bounds on what the store holds (defaults MAX_TABLES, MAX_PARTITIONS_PER_TABLE; tests lower them). */
  limits?: Partial<StoreLimits>
  /**
   * In a private mesh: signs this peer's local changes as changesets, kept in the log and handed
   * to replication with the change events (docs/trust.md). Its author must be the store's actor.
   */
  signer?: ChangeSigner
  /** Refuses local writes this peer may not make (its rights in a private mesh). */
  guard?: LocalWriteGuard
}

export interface StoreLimits {
  maxTables: number
  maxPartitionsPerTable: number
}

export type ChangeListener = (event: ChangeEvent) => void

/** A peer's row for `applyRemoteRows`: a delta or a whole encoded document. */
export interface RemoteRow {
  key: string
  bytes: Uint8Array
}

/**
 * Rows of every table in one LevelDB database. Writes go through one queue: each batch applies
 * its operations to the live documents, checks the rows they produce, then writes rows, digest
 * leaves, roots, counts and the key index in one atomic LevelDB batch, and only then acknowledges
 * them (group commit). Reads see committed state only.
 *
 * The parts live beside this file: write-batch.ts and commit.ts (the write path), reads.ts,
 * replication-reads.ts (what anti-entropy reads), check.ts, catalog.ts (schemas in force),
 * digest-state.ts, key-index.ts, open.ts, layout.ts (keys and records).
 */
export class Store {
  private readonly listeners = new Set<ChangeListener>()
  private queue: Array<Job | AtomicJob> = []
  private draining: Promise<void> | null = null
  private closed = false

  private constructor(
    private readonly core: StoreCore,
    private readonly release: () => Promise<void>,
  ) {}

  static async open(options: StoreOptions): Promise<Store> {
    const { db, actor, release } = await openDatabase(options.dir, options.actor)
    const closeAll = async (): Promise<void> => {
      await db.close()
      await release()
    }
    const logger = options.logger ?? silentLogger
    const context: EngineContext = options.nowSeconds === undefined ? { actor } : { actor, nowSeconds: options.nowSeconds }
    const levels = StoreCore.sublevels(db)
    const digests = new DigestState(options.treeCacheSize ?? DEFAULT_TREE_CACHE_SIZE)
    if (options.signer !== undefined && options.signer.author !== actor) {
      await closeAll()
      throw new StoreOpenError(`data folder '${options.dir}' belongs to replica '${actor}', but changesets are signed by '${options.signer.author}': a private mesh needs a data folder made by this peer (start from an empty folder)`)
    }
    const changeLog = new ChangeLog()
    const feed = new ChangeFeed()
    const core = new StoreCore({
      db,
      dir: options.dir,
      actor,
      context,
      cache: new RowCache<LiveRow>(options.rowCacheSize ?? DEFAULT_ROW_CACHE_SIZE),
      digests,
      keyIndex: new KeyIndex(levels.keys),
      catalog: new Catalog(logger, options.limits?.maxTables ?? MAX_TABLES),
      log: logger,
      syncWrites: options.syncWrites ?? true,
      maxPartitionsPerTable: options.limits?.maxPartitionsPerTable ?? MAX_PARTITIONS_PER_TABLE,
      changeLog,
      feed,
      signer: options.signer ?? null,
      guard: options.guard ?? null,
    })
    try {
      await digests.load(levels.meta)
      await changeLog.load(levels.changes, levels.meta)
      await feed.load(levels.meta, (message) => logger.warn(message))
      let after: { partition: string; key: string } | null = null
      for (;;) {
        const page: StoredRow[] = await scanRows(core, CATALOG_SCHEMA, '', after, 1000)
        for (const row of page) core.catalog.committed(row.key, row.state.values)
        if (page.length < 1000) break
        after = { partition: '', key: page[page.length - 1]!.key }
      }
      for (const table of core.catalog.tables()) await loadEngine(table.engine)
    } catch (error) {
      await closeAll()
      throw error
    }
    return new Store(core, release)
  }

  get dir(): string {
    return this.core.dir
  }

  /** This replica's identity (stable for the data folder). */
  get actor(): string {
    return this.core.actor
  }

  get isOpen(): boolean {
    return !this.closed
  }

  // ---- schemas ---------------------------------------------------------------------------------

  /** The schema in force for a table (the catalog's own for `_tables`), or undefined. */
  schema(table: string): ResolvedSchema | undefined {
    return this.core.catalog.get(table)
  }

  /** The schema in force; UnknownTableError naming the known tables otherwise. */
  requireSchema(table: string): ResolvedSchema {
    return this.core.catalog.require(table)
  }

  /** User tables, by name. */
  tables(): ResolvedSchema[] {
    return this.core.catalog.tables()
  }

  // ---- writes --------------------------------------------------------------------------------

  /** Applies one local operation durably; resolves after its batch is on disk. */
  writeLocal(schema: ResolvedSchema, key: string, partition: string | null, createPartition: string | null, op: RowOp): Promise<LocalWriteResult> {
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'local', schema, key, partition, createPartition, op, resolve, reject })
    })
  }

  /**
   * Merges a peer's delta (or whole document) durably. Idempotent. Refuses, with nothing stored
   * changing: unknown tables, malformed keys or partitions, oversized or undecodable deltas, rows
   * that fail the row check, a key stored here in another partition, incompatible schemas.
   */
  applyRemote(table: string, partition: string, key: string, delta: Uint8Array, origin: string): Promise<ApplyResult> {
    let schema: ResolvedSchema
    try {
      schema = this.remoteTarget(table, partition, key, delta)
    } catch (error) {
      return Promise.reject(error)
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'remote', schema, key, partition, delta, origin, resolve, reject })
    })
  }

  /**
   * A peer's signed changeset, whose signature and author rights the caller has checked
   * (docs/trust.md): each delta must hold only its author's operations and pass the row checks;
   * then all its rows are merged, or none, and it is logged with its bytes. 'known' if logged here.
   */
  applyChangeset(changeset: Changeset, bytes: Uint8Array, origin: string): Promise<ChangesetOutcome> {
    let schema: ResolvedSchema
    try {
      if (this.core.changeLog.has(logEntryOf(changeset))) return Promise.resolve('known')
      schema = this.core.catalog.require(changeset.table)
      const engine = engineFor(schema.engine)
      for (const row of changeset.rows) {
        this.remoteTarget(changeset.table, changeset.partition, row.key, row.delta)
        engine.checkAuthor(row.delta, changeset.author)
      }
    } catch (error) {
      return Promise.reject(error)
    }
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'changeset', schema, changeset, bytes, origin, resolve, reject })
    })
  }

  /** Which changesets of a partition this store holds: author → held sequence ranges. */
  changesetClock(table: string, partition: string): Array<{ author: string; ranges: Array<[number, number]> }> {
    return [...this.core.changeLog.heldOf(table, partition)].map(([author, ranges]) => ({ author, ranges: ranges.toList() }))
  }

  /** Logged changesets of one author in a partition, in sequence order, within `ranges`, about `maxBytes` (at least one), at most 4096. */
  readChangesets(table: string, partition: string, author: string, ranges: ReadonlyArray<readonly [number, number]>, maxBytes: number) {
    this.assertOpen()
    return readLoggedChangesets(this.core, table, partition, author, ranges, maxBytes, MAX_CHANGESETS_PER_READ)
  }

  /** Several rows of one partition from a peer, in one batch: each settles on its own. */
  applyRemoteRows(table: string, partition: string, rows: readonly RemoteRow[], origin: string): Promise<Array<PromiseSettledResult<ApplyResult>>> {
    return Promise.allSettled(rows.map((r) => this.applyRemote(table, partition, r.key, r.bytes, origin)))
  }

  private remoteTarget(table: string, partition: string, key: string, delta: Uint8Array): ResolvedSchema {
    const schema = this.core.catalog.require(table)
    if (!(delta instanceof Uint8Array)) throw new ValidationError('a delta must be bytes (Uint8Array)')
    if (delta.length > MAX_DELTA_BYTES) throw new DeltaError(`delta for row '${key}' of table '${table}' is ${delta.length} bytes, over the ${MAX_DELTA_BYTES}-byte limit`)
    if (schema.partitionBy === null) {
      if (partition !== '') throw new PartitionError(`table '${table}' is not partitioned; a delta for partition '${partition}' is invalid`)
    } else {
      normalizeKeyValue(`partition of table '${table}'`, 'string', partition)
    }
    normalizeKeyValue(`row key of table '${table}'`, 'string', key)
    return schema
  }

  /**
   * Commits `writes` and (if given) the bookmark in ONE atomic LevelDB batch; resolves once it is
   * durable, with one result per write in order (atomic.ts says what is atomic and what is not).
   */
  writeAtomic(writes: readonly AtomicWrite[], options: AtomicOptions = {}): Promise<AtomicWriteResult[]> {
    const bookmark = options.bookmark ?? null
    try {
      checkAtomic(writes, bookmark)
    } catch (error) {
      return Promise.reject(error)
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
    return (await this.core.levels.meta.get(bookmarkKey(name))) ?? null
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
        // An atomic batch's writes join this group commit like any others; its bookmark commits with them.
        const atomic = batch.filter((j): j is AtomicJob => j.kind === 'atomic')
        const jobs = atomic.length === 0 ? (batch as Job[]) : batch.flatMap((j) => (j.kind === 'atomic' ? j.writes : [j]))
        let failure: { error: unknown } | null = null
        const bookmarks = atomic.flatMap((a) => (a.bookmark === null ? [] : [a.bookmark]))
        const flushing = runBatch(this.core, jobs, bookmarks, (error) => (failure = { error }))
        this.core.flushing = flushing.then(() => undefined)
        const events = await flushing
        this.core.flushing = null
        for (const a of atomic) {
          if (failure === null) a.resolve(a.results)
          else a.reject((failure as { error: unknown }).error)
        }
        for (const event of events) this.emit(event)
      }
    } finally {
      this.draining = null
    }
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** The committed state of a row, or null if it was never stored. */
  read(schema: ResolvedSchema, key: string, partition: string | null): Promise<StoredRow | null> {
    this.assertOpen()
    return readRow(this.core, schema, key, partition)
  }

  /** Live rows in key order, from one partition or (partition null) all of them. */
  scan(schema: ResolvedSchema, partition: string | null, after: { partition: string; key: string } | null, limit: number): Promise<StoredRow[]> {
    this.assertOpen()
    return scanRows(this.core, schema, partition, after, limit)
  }

  /** Losing values of concurrent register writes (Automerge tables), per column. */
  conflicts(schema: ResolvedSchema, key: string, partition: string | null): Promise<Record<string, unknown[]> | null> {
    this.assertOpen()
    return readConflicts(this.core, schema, key, partition)
  }

  /** The partition holding `key` (the first one seen here), or null. */
  findPartition(table: string, key: string): Promise<string | null> {
    return this.core.keyIndex.find(table, key)
  }

  // ---- replication reads (see replication-reads.ts) ------------------------------------------

  /** Partitions of a table that hold rows (live or deleted), with live row counts and digest roots. */
  partitions(table: string): PartitionSummary[] {
    return this.core.digests.partitions(table)
  }

  partition(table: string, partition: string): PartitionSummary | undefined {
    return this.core.digests.partition(table, partition)
  }

  /** True if rows of (table, partition) are stored here. */
  holds(table: string, partition: string): boolean {
    return this.core.digests.holds(table, partition)
  }

  rowCount(table: string, partition?: string): number {
    return this.core.digests.rowCount(table, partition)
  }

  digestTree(table: string, partition: string): Promise<DigestTreeLike> {
    this.assertOpen()
    return replication.digestTree(this.core, table, partition)
  }

  leafRows(table: string, partition: string, leaves: readonly number[]): Promise<LeafRow[]> {
    this.assertOpen()
    return replication.leafRows(this.core, table, partition, leaves)
  }

  rowRange(table: string, partition: string, fromLeaf: number, toLeaf: number, after: replication.RangeCursor | null, maxBytes: number) {
    this.assertOpen()
    return replication.rowRange(this.core, table, partition, fromLeaf, toLeaf, after, maxBytes)
  }

  encodedRows(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
    this.assertOpen()
    return replication.encodedRows(this.core, table, partition, keys)
  }

  rowsSince(schema: ResolvedSchema, partition: string, items: ReadonlyArray<{ key: string; since: Uint8Array | null }>): Promise<Array<RowSince | null>> {
    this.assertOpen()
    return replication.rowsSince(this.core, schema, partition, items)
  }

  // ---- change feed (anti-entropy by versions) --------------------------------------------------

  /** This store's feed id: positions of one epoch compare; a data folder started over has another. */
  feedEpoch(): string {
    return this.core.feed.epoch()
  }

  /** A partition's last change-feed position. */
  feedSeq(table: string, partition: string): number {
    return this.core.feed.seq(partitionId(table, partition))
  }

  /** Keys of a partition changed after feed position `after` (see store/change-feed.ts). */
  changedSince(table: string, partition: string, after: number, limit: number): Promise<FeedAnswer> {
    this.assertOpen()
    return this.core.feed.since(this.core.levels.feed, partitionId(table, partition), after, limit)
  }

  rowHashes(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
    this.assertOpen()
    return replication.rowHashes(this.core, table, partition, keys)
  }

  /** The feed position of `peer`'s partition whose state this store was seen to hold, or null. */
  feedMark(peer: string, table: string, partition: string): Promise<FeedMark | null> {
    this.assertOpen()
    return this.core.feed.mark(this.core.levels.meta, peer, partitionId(table, partition))
  }

  setFeedMark(peer: string, table: string, partition: string, mark: FeedMark): Promise<void> {
    this.assertOpen()
    return this.core.feed.setMark(this.core.levels.meta, peer, partitionId(table, partition), mark)
  }

  /** Re-reads every row and verifies digests, digest trees, counts and the row check (see check.ts). */
  async check(): Promise<CheckReport> {
    this.assertOpen()
    while (this.draining !== null) await this.draining
    return checkStore(this.core, (table) => this.core.catalog.get(table))
  }

  // ---- events and lifecycle --------------------------------------------------------------------

  /** Every committed change, local or remote, to any table (the `_tables` catalog included). */
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
        this.core.log.error(`a change listener threw on ${event.table}/${JSON.stringify(event.key)}: ${(error as Error).message}`, { error: (error as Error).stack })
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError()
  }

  /** Finishes queued writes, then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.draining !== null) await this.draining
    this.core.cache.clear()
    this.core.digests.clear()
    await this.core.db.close()
    await this.release()
  }
}
export type { ReplicaSource } from './replica-source.js'
