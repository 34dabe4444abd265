// Over 400 lines on purpose: the steps of one group commit (partition, load, apply, changesets,
// commit) read top to bottom in one place; commit.ts and changesets.ts hold what stands alone.
import { MAX_ROW_BYTES } from '../constants.js'
import { ForbiddenError, PartitionError, RowNotFoundError, RowTooLargeError, ShoalError, StoreWriteError, ValidationError } from '../errors.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { loadEngine } from '../table/engines.js'
import type { ApplyResult } from '../table/engine.js'
import type { RowOp, RowState } from '../table/row.js'
import { checkRow, RowCheckError } from '../table/row-check.js'
import { keyColumnValue, type ResolvedSchema } from '../table/schema.js'
import { logKey } from './change-log.js'
import { logEntryOf, mergeResults, signLocalChanges, type ChangesetJob, type ChangesetRef, type LocalChange, type PendingLog } from './changesets.js'
import { commitRows, type DirtyRow } from './commit.js'
import type { StoreCore } from './core.js'
import { indexKey, rowKey, type Bookmark } from './layout.js'
import type { LiveRow } from './live-row.js'

/** A committed change to one row, local or from a peer. */
export interface ChangeEvent {
  table: string
  partition: string
  key: string
  /** 'local', or the id of the peer the delta came from. */
  origin: string
  alive: boolean
  /** The row's causal length after the change (odd: alive; see table/row.ts). */
  life: number
  /** The row after the change (null when deleted). */
  row: Readonly<Record<string, unknown>> | null
  /** The engine delta of this change: what a peer needs to apply it. */
  delta: Uint8Array
  /** The `source` of the atomic batch that wrote it (atomic.ts), so its writer can tell its own changes. */
  source?: string
  /** In a private mesh: the signed changeset holding this change (shared by its other rows). */
  changeset?: ChangesetRef
}

export interface LocalWriteResult {
  partition: string
  changed: boolean
  /** The row after the write, with its life. */
  state: RowState
}

export interface LocalJob {
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

export interface RemoteJob {
  kind: 'remote'
  schema: ResolvedSchema
  key: string
  partition: string
  delta: Uint8Array
  origin: string
  resolve: (result: ApplyResult) => void
  reject: (error: unknown) => void
  /** Set for the rows of a peer's changeset: they are applied all or none. */
  group?: ChangesetGroup
}

/** A changeset's rows as they go through one batch. */
interface ChangesetGroup {
  job: ChangesetJob
  rows: RemoteJob[]
  results: ApplyResult[]
  failed: unknown | null
}

export type Job = LocalJob | RemoteJob | ChangesetJob
type RowJob = LocalJob | RemoteJob

/** One row touched by a batch. */
interface Touched extends DirtyRow {
  live: LiveRow | null
  /** Set when the stored row could not be decoded: jobs on it are refused, the others go on. */
  loadError: Error | null
  deltas: Uint8Array[]
  dirty: boolean
}

const ABSENT: RowState = { alive: false, life: 0, values: {} }

function identityValues(schema: ResolvedSchema, key: string, partition: string): Record<string, unknown> {
  const values: Record<string, unknown> = { [schema.primaryKey]: keyColumnValue(schema.columns[schema.primaryKey]!, key) }
  if (schema.partitionBy !== null) values[schema.partitionBy] = keyColumnValue(schema.columns[schema.partitionBy]!, partition)
  return values
}

/**
 * Applies one batch of jobs (group commit): finds each row's partition, loads the rows, applies
 * the operations in order, checks every changed row (table/row-check.ts; catalog rows also
 * against the schemas in force), and writes everything that changed in one atomic LevelDB batch.
 * A job refused on its own is rejected and its row restored; the rest of the batch goes on.
 * Jobs are resolved, and the change events returned, only once the batch is durable.
 */
export async function runBatch(
  core: StoreCore,
  input: readonly Job[],
  /** Committed with the rows (atomic batches, atomic.ts). */
  bookmarks: readonly Bookmark[] = [],
  /** Told the error when the batch could not be written (every job is rejected with it). */
  onFailure?: (error: unknown) => void,
): Promise<ChangeEvent[]> {
  const touched = new Map<string, Touched>()
  const targets = new Map<RowJob, Touched>()
  const refused = new Set<RowJob>()
  const { jobs, groups } = expandChangesets(core, input)
  // In a browser, a table's engine may not be loaded until its first rows arrive (engines.browser.ts).
  for (const engine of new Set(jobs.map((j) => j.schema.engine))) await loadEngine(engine)

  // 1. Each row's partition. A key lives in one partition, fixed when its row is first stored
  //    here; jobs are taken in order, so a row created earlier in this batch is found by the
  //    jobs after it, and a peer's row for a key stored here in another partition is refused.
  const lookups = new Set<string>()
  for (const job of jobs) {
    if (job.schema.partitionBy === null) continue
    if (job.kind === 'remote' || job.partition === null || job.op.op === 'put') lookups.add(indexKey(job.schema.name, job.key))
  }
  const existing = lookups.size === 0 ? new Map<string, string | null>() : await core.keyIndex.findMany(lookups)
  /** What the key index held before this batch, for keys created by it (the commit indexes those). */
  const indexedBefore = new Map(existing)
  /** Partitions new here that this batch creates, per table. */
  const newPartitions = new Map<string, Set<string>>()
  for (const job of jobs) {
    try {
      const k = indexKey(job.schema.name, job.key)
      const partition = partitionFor(job, existing.get(k) ?? null)
      if (partition === null) continue
      if (!core.digests.holds(job.schema.name, partition)) {
        const created = newPartitions.get(job.schema.name) ?? new Set<string>()
        if (!created.has(partition)) {
          const max = core.maxPartitionsPerTable
          if (core.digests.partitionCount(job.schema.name) + created.size >= max) {
            throw new PartitionError(`table '${job.schema.name}' has ${max} partitions here, the limit (MAX_PARTITIONS_PER_TABLE); a row for a new partition ${JSON.stringify(partition)} is refused`)
          }
          created.add(partition)
          newPartitions.set(job.schema.name, created)
        }
      }
      if (job.schema.partitionBy !== null && !existing.get(k)) existing.set(k, partition)
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
  // A changeset is applied whole or not at all.
  for (const group of groups) if (group.failed !== null) for (const row of group.rows) refused.add(row)
  for (const id of touched.keys()) core.inFlight.add(id)

  try {
    // 2. Load the rows involved.
    await loadTouched(core, [...touched.values()])

    // 3. Apply operations in order.
    const done: Array<() => void> = []
    const events: ChangeEvent[] = []
    let mark: GroupMark | null = null
    for (const job of jobs) {
      if (refused.has(job)) continue
      const group = job.kind === 'remote' ? job.group : undefined
      if (group !== undefined && group.rows[0] === job) mark = markGroup(group, targets, events, done)
      const t = targets.get(job)
      if (t === undefined) {
        // A delete of a key stored nowhere: nothing to do.
        if (job.kind === 'local') job.resolve({ partition: '', changed: false, state: ABSENT })
        continue
      }
      try {
        if (t.loadError !== null) throw t.loadError
        if (job.kind === 'local') applyLocal(core, job, t, done, events)
        else applyRemote(core, job, t, done, events)
      } catch (error) {
        if (group !== undefined && mark !== null) {
          // One row of a changeset refused: none of it is applied.
          group.failed = error
          for (const row of group.rows) refused.add(row)
          await rollBack(core, mark, events, done)
          continue
        }
        // Refusals found before changing anything leave the document as it was; anything else
        // (a delta that failed half-way, a row that failed its check or grew too large) is undone
        // from disk plus the batch's accepted changes.
        const beforeAnyChange =
          t.loadError !== null || (job.kind === 'local' && (error instanceof RowNotFoundError || error instanceof ForbiddenError || (error instanceof ValidationError && !(error instanceof RowCheckError))))
        if (!beforeAnyChange) await rebuild(core, t)
        job.reject(error)
      }
    }

    // 4. Changesets: peers' as they came, this peer's own signed now; all logged with the rows.
    const logs: PendingLog[] = []
    for (const group of groups) {
      if (group.failed !== null) {
        group.job.reject(group.failed)
        continue
      }
      logs.push({ entry: logEntryOf(group.job.changeset), bytes: group.job.bytes })
      done.push(() => group.job.resolve(mergeResults(group.results)))
    }
    const own = await signLocalChanges(core, localChanges(events))
    logs.push(...own.logs)

    // 5. One atomic batch for everything that changed.
    await commitRows(
      core,
      [...touched.values()].filter((t) => t.dirty),
      indexedBefore,
      bookmarks,
      logs,
      own.ownSeqs,
    )
    // The schemas in force move with the commit, before anyone hears of it: a write that defined
    // a table finds it when it resolves, and listeners see the table a catalog change defines.
    for (const event of events) if (event.table === CATALOG_TABLE) core.catalog.committed(event.key, event.row)
    for (const resolve of done) resolve()
    return events
  } catch (error) {
    for (const t of touched.values()) core.cache.delete(t.id)
    const detail = (error as Error).message
    const hint = /no space left/i.test(detail) ? `; free space on the disk holding '${core.dir}' and retry` : ''
    const failure = error instanceof ShoalError ? error : new StoreWriteError(`write to '${core.dir}' failed: ${detail}; nothing of this batch was applied${hint}`, { cause: error })
    for (const job of jobs) job.reject(failure)
    for (const group of groups) group.job.reject(failure)
    onFailure?.(failure)
    return []
  } finally {
    for (const t of touched.values()) {
      core.inFlight.delete(t.id)
      if (t.live !== null) core.cache.unpin(t.live)
    }
  }
}

/** The partition a job addresses, given where its key already lives (null: nowhere yet). */
function partitionFor(job: RowJob, existing: string | null): string | null {
  const { schema } = job
  if (job.kind === 'remote') {
    if (existing !== null && existing !== job.partition) {
      throw new PartitionError(`row '${job.key}' of table '${schema.name}' is stored here in partition '${existing}'; a copy for partition '${job.partition}' is refused (a key lives in one partition)`)
    }
    return job.partition
  }
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
      throw new PartitionError(`row '${job.key}' of table '${schema.name}' is in partition '${existing}'; its '${schema.partitionBy}' cannot change to '${wanted}'`)
    }
    return existing
  }
  if (wanted === null) {
    throw new PartitionError(`table '${schema.name}' is partitioned by '${schema.partitionBy}': include '${schema.partitionBy}' in the row to create '${job.key}'`)
  }
  return wanted
}

async function loadTouched(core: StoreCore, list: Touched[]): Promise<void> {
  const missing: Touched[] = []
  for (const t of list) {
    const live = core.cache.get(t.id)
    if (live !== undefined) {
      t.live = live
      core.cache.pin(live)
    } else {
      missing.push(t)
    }
  }
  if (missing.length === 0) return
  const values = await core.levels.rows.getMany(missing.map((t) => t.id))
  missing.forEach((t, i) => {
    const bytes = values[i]
    if (bytes === undefined) return
    try {
      t.live = core.decodeLive(t.schema, t.key, t.id, bytes)
      core.cache.pin(t.live)
    } catch (error) {
      t.loadError = error as Error
    }
  })
}

function ensureLive(core: StoreCore, t: Touched): LiveRow {
  if (t.live === null) {
    t.live = core.newLive(t.schema, t.key)
    core.cache.pin(t.live)
  }
  return t.live
}

function applyLocal(core: StoreCore, job: LocalJob, t: Touched, done: Array<() => void>, events: ChangeEvent[]): void {
  core.guard?.(job.schema.name, t.partition)
  if (t.live === null && job.op.op !== 'put') {
    if (job.op.op === 'delete') {
      done.push(() => job.resolve({ partition: t.partition, changed: false, state: ABSENT }))
      return
    }
    throw new RowNotFoundError(job.schema.name, job.key)
  }
  const live = ensureLive(core, t)
  let op = job.op
  if (op.op === 'put' && !live.doc.alive) {
    // A new life starts from empty columns: write the key and partition columns into it.
    op = { op: 'put', values: { ...identityValues(job.schema, t.key, t.partition), ...op.values } }
  }
  const delta = live.doc.apply(op, job.schema)
  if (delta !== null) accept(core, t, delta)
  const state = live.doc.state(job.schema)
  done.push(() => job.resolve({ partition: t.partition, changed: delta !== null, state }))
  if (delta !== null) {
    events.push({
      table: t.schema.name,
      partition: t.partition,
      key: t.key,
      origin: 'local',
      alive: state.alive,
      life: state.life,
      row: state.alive ? state.values : null,
      delta,
      ...(job.source === undefined ? {} : { source: job.source }),
    })
  }
}

function applyRemote(core: StoreCore, job: RemoteJob, t: Touched, done: Array<() => void>, events: ChangeEvent[]): void {
  const live = ensureLive(core, t)
  const result = live.doc.applyDelta(job.delta)
  if (result !== 'unchanged') accept(core, t, job.delta)
  done.push(() => job.resolve(result))
  if (result === 'changed') {
    const state = live.doc.state(job.schema)
    const event: ChangeEvent = { table: t.schema.name, partition: t.partition, key: t.key, origin: job.origin, alive: state.alive, life: state.life, row: state.alive ? state.values : null, delta: job.delta }
    if (job.group !== undefined) {
      const { changeset, bytes } = job.group.job
      event.changeset = { author: changeset.author, seq: changeset.seq, bytes }
    }
    events.push(event)
  }
}

/** The row jobs of a batch, with each peer changeset's rows in its place; changesets logged already resolve 'known'. */
function expandChangesets(core: StoreCore, input: readonly Job[]): { jobs: RowJob[]; groups: ChangesetGroup[] } {
  const jobs: RowJob[] = []
  const groups: ChangesetGroup[] = []
  const seen = new Set<string>()
  for (const job of input) {
    if (job.kind !== 'changeset') {
      jobs.push(job)
      continue
    }
    const entry = logEntryOf(job.changeset)
    const id = logKey(entry.pid, entry.author, entry.seq)
    if (core.changeLog.has(entry) || seen.has(id)) {
      job.resolve('known')
      continue
    }
    seen.add(id)
    const group: ChangesetGroup = { job, rows: [], results: [], failed: null }
    job.changeset.rows.forEach((row, i) => {
      const rowJob: RemoteJob = {
        kind: 'remote',
        schema: job.schema,
        key: row.key,
        partition: job.changeset.partition,
        delta: row.delta,
        origin: job.origin,
        group,
        resolve: (result) => (group.results[i] = result),
        reject: (error) => (group.failed ??= error),
      }
      group.rows.push(rowJob)
      jobs.push(rowJob)
    })
    groups.push(group)
  }
  return { jobs, groups }
}

/** Where a batch stood before a changeset's first row: what to restore if one of its rows is refused. */
interface GroupMark {
  rows: Array<{ t: Touched; deltas: number }>
  events: number
  done: number
}

function markGroup(group: ChangesetGroup, targets: ReadonlyMap<RowJob, Touched>, events: readonly ChangeEvent[], done: ReadonlyArray<() => void>): GroupMark {
  const rows = new Map<Touched, number>()
  for (const row of group.rows) {
    const t = targets.get(row)
    if (t !== undefined && !rows.has(t)) rows.set(t, t.deltas.length)
  }
  return { rows: [...rows].map(([t, deltas]) => ({ t, deltas })), events: events.length, done: done.length }
}

async function rollBack(core: StoreCore, mark: GroupMark, events: ChangeEvent[], done: Array<() => void>): Promise<void> {
  events.length = mark.events
  done.length = mark.done
  for (const { t, deltas } of mark.rows) {
    t.deltas.length = deltas
    await rebuild(core, t)
  }
}

function localChanges(events: readonly ChangeEvent[]): LocalChange[] {
  return events
    .filter((e) => e.origin === 'local')
    .map((e) => ({ table: e.table, partition: e.partition, key: e.key, delta: e.delta, attach: (ref: ChangesetRef) => (e.changeset = ref) }))
}

/** Checks the row as a change left it and notes the change; throws (the caller restores the row) if it is refused. */
function accept(core: StoreCore, t: Touched, delta: Uint8Array): void {
  const doc = t.live!.doc
  checkRow(doc, t.schema, t.key, t.partition)
  if (t.schema.name === CATALOG_TABLE && doc.alive) core.catalog.check(t.key, doc.state(t.schema).values)
  t.deltas.push(delta)
  t.dirty = true
  const estimate = t.live!.storedBytes + t.deltas.reduce((sum, d) => sum + d.length, 0)
  if (estimate > MAX_ROW_BYTES) {
    const exact = doc.encode().length
    if (exact > MAX_ROW_BYTES) {
      t.deltas.pop()
      throw new RowTooLargeError(t.schema.name, t.key, exact, MAX_ROW_BYTES)
    }
  }
}

/** Restores a row's document to disk state plus this batch's accepted changes (after a refusal). */
async function rebuild(core: StoreCore, t: Touched): Promise<void> {
  if (t.live === null) return
  const old = t.live
  // Disk cannot have changed since this batch began: batches are the only writers, one at a time.
  const stored = (await core.levels.rows.get(t.id)) ?? null
  let live: LiveRow | null = null
  if (stored !== null) live = core.decodeLive(t.schema, t.key, t.id, stored)
  else if (t.deltas.length > 0) live = core.newLive(t.schema, t.key)
  if (live !== null) {
    for (const d of t.deltas) live.doc.applyDelta(d)
    core.cache.pin(live)
  }
  core.cache.delete(t.id)
  core.cache.unpin(old)
  t.live = live
  t.dirty = t.deltas.length > 0
}
