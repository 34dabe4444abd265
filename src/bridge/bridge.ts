// Over 400 lines on purpose: one loop owns capture, write-back and reconcile so they never race
// (see below); the SQL-specific parts already live in the dialects, capture.ts and write-back.ts.
import { isAbsolute, resolve } from 'node:path'
import { RowNotFoundError } from '../errors.js'
import { quote, type Logger } from '../log.js'
import type { BatchOp, Shoal } from '../shoal.js'
import { MAX_ATOMIC_WRITES } from '../store/store.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { normalizeKeyValue, type ResolvedSchema } from '../table/schema.js'
import { convertChange, idRanges, idsOfRanges, type ConvertedChange } from './capture.js'
import type { BridgeConfig, BridgeTableConfig } from './config.js'
import { isTransientSqlError, nextAttemptAt } from './dead-letters.js'
import { trimReason, type CapturedChange, type DeadLetter, type MirrorSpec, type SqlDialect, type SqlWriteTx } from './dialect.js'
import { SqlConnectError } from './errors.js'
import { checkNothingDropped, planMirror } from './mirror.js'
import { MysqlDialect } from './mysql.js'
import { PostgresDialect } from './postgres.js'
import { SqliteDialect } from './sqlite.js'
import { MAX_DEAD_LETTERS_SHOWN, type BridgeStatus, type BridgeTableStatus } from './status.js'
import { keyOfSqlRow, nativeKey, planWrites, type ShoalRow } from './write-back.js'

/*
 * The SQL bridge of one peer: mirrors tables of one SQL database into Shoal tables and back.
 *
 *   SQL client ──commit──▶ triggers ──▶ shoal_capture ──drain──▶ Shoal store (atomic batch +
 *                                                                 bookmark of capture ids)
 *   Shoal store ◀── mesh (gossip, anti-entropy) ── change events ──▶ write-back ──▶ SQL table
 *
 * One loop does everything, one step at a time, so capture and write-back never race each other:
 *   1. drain: read captured changes in id order, apply them to the store in ONE atomic batch that
 *      also records their ids (bookmark), then delete them from the capture table. A crash
 *      between the two leaves the bookmark, and the next start deletes those ids first: every
 *      captured change is applied exactly once (a counter increment applied twice would be a lost
 *      write).
 *   2. write-back: rows changed in Shoal (from the mesh, the HTTP API, or by a captured change —
 *      the merged row may differ from what SQL holds) are written in transactions that are not
 *      captured again: lock the rows, skip those with captured changes not drained yet (their
 *      turn comes after the next drain), write the merged row where it differs. Idempotent.
 *   3. reconcile (after a crash, a first attach, or when the store changed while the bridge was
 *      off): compare every Shoal row with SQL, a page per turn. A clean stop records the digest
 *      roots of the mirrored tables; equal roots at the next start mean nothing to compare.
 *   4. dead letters due for a retry; schema changes; status figures.
 * Wake-ups: the database's push (LISTEN/NOTIFY, file watch), Shoal change events, and the poll
 * interval as the fallback; the loop sleeps when there is nothing to do.
 */

/** `source` of the bridge's own store batches: their change events are not written back again. */
export const BRIDGE_SOURCE = 'sql-bridge'
/** How often SQL table definitions are compared with the mirrors (ADD COLUMN detection). */
export const SCHEMA_POLL_MS = 2000
/** How often pending counts are read from the capture table for status and metrics. */
export const STATUS_REFRESH_MS = 1000
/** Reconnect backoff while the database is unreachable. */
export const RECONNECT_MIN_MS = 500
export const RECONNECT_MAX_MS = 30_000
/** Rows compared per reconcile step. */
export const RECONCILE_PAGE_ROWS = 500
/** How long stop() keeps writing back rows changed just before it. */
export const STOP_FLUSH_MS = 5000

export interface SqlBridgeInit {
  db: Shoal
  config: BridgeConfig
  logger: Logger
  /** Folder a relative SQLite path is resolved against (default: the working directory). */
  baseDir?: string
  /** The database adapter (default: from config.database). */
  dialect?: SqlDialect
  now?: () => number
  random?: () => number
  /** Initial load progress (captured changes applied of those pending when it began). */
  onProgress?: (update: { table: string; done: number; total: number; finished: boolean }) => void
}

interface Mirror {
  config: BridgeTableConfig
  spec: MirrorSpec
  schema: ResolvedSchema
  counters: string[]
  captured: number
  writtenBack: number
  pending: number
  oldestAt: number | null
  loading: { done: number; total: number } | null
  error: string | null
  reconcile: { phase: 'shoal' | 'sql'; after: string | null; sqlAfter: unknown } | null
}

interface CaptureBookmark {
  epoch: string
  ids: Array<[number, number]>
}

export function dialectFor(config: BridgeConfig, baseDir: string): SqlDialect {
  const db = config.database
  switch (db.dialect) {
    case 'sqlite':
      return new SqliteDialect(isAbsolute(db.path) ? db.path : resolve(baseDir, db.path))
    case 'postgres':
      return new PostgresDialect(db.url)
    case 'mysql':
      return new MysqlDialect(db.url)
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

export class SqlBridge {
  private readonly db: Shoal
  private readonly config: BridgeConfig
  private readonly log: Logger
  private readonly dialect: SqlDialect
  private readonly now: () => number
  private readonly random: () => number
  /** Initial load progress (settable after start, as `shoal start` does for its progress bar). */
  onProgress: SqlBridgeInit['onProgress']
  private readonly mirrors = new Map<string, Mirror>()
  private readonly byShoal = new Map<string, Mirror>()
  private readonly mirroredTables: Set<string>
  /** Shoal table → key → partition (null: look it up): rows to compare with SQL. */
  private readonly dirty = new Map<string, Map<string, string | null>>()
  private readonly letters = new Map<string, DeadLetter>()
  private readonly unsubscribe: () => void
  private stopWatch: () => void = () => undefined
  private epoch = ''
  private connected = false
  private stopping = false
  private state: BridgeStatus['state'] = 'connecting'
  private lastError: string | null = null
  private loop: Promise<void> | null = null
  private wakeUp: (() => void) | null = null
  private woken = false
  private schemaCheckedAt = 0
  private schemaDue = false
  private statusAt = 0
  private iteration = 0
  /** Ids of the last applied batch while their deletion from the capture table is not done. */
  private appliedNotDeleted: number[] = []
  /** Unknown captured columns a schema refresh was already tried for. */
  private readonly unknownTried = new Set<string>()
  private idleWaiters: Array<{ after: number; resolve: () => void }> = []
  private readonly captureBookmark: string
  private readonly cleanBookmark: string

  private constructor(init: SqlBridgeInit) {
    this.db = init.db
    this.config = init.config
    this.log = init.logger
    this.dialect = init.dialect ?? dialectFor(init.config, init.baseDir ?? process.cwd())
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
    this.onProgress = init.onProgress
    this.mirroredTables = new Set(init.config.tables.map((t) => t.table))
    this.captureBookmark = `sql-bridge:capture:${this.dialect.label}`
    this.cleanBookmark = `sql-bridge:clean:${this.dialect.label}`
    // Subscribed before attaching, so no change committed meanwhile is missed.
    this.unsubscribe = this.db.subscribe((event) => {
      if (event.table === CATALOG_TABLE) {
        if (this.mirroredTables.has(event.key)) {
          this.schemaDue = true
          this.wake()
        }
        return
      }
      if (event.source === BRIDGE_SOURCE || !this.mirroredTables.has(event.table)) return
      this.markDirty(event.table, event.key, event.partition)
      this.wake()
    })
  }

  /**
   * Starts the bridge. A database that cannot be reached is retried with backoff while the peer
   * runs (the peer starts anyway); a database that answers but whose tables cannot be mirrored
   * (unmappable type, no primary key, …) fails the start with a message naming table and column.
   */
  static async start(init: SqlBridgeInit): Promise<SqlBridge> {
    const bridge = new SqlBridge(init)
    try {
      await bridge.attach()
    } catch (error) {
      if (!(error instanceof SqlConnectError)) {
        bridge.unsubscribe()
        await bridge.dialect.close().catch(() => undefined)
        throw error
      }
      bridge.lastError = error.message
      bridge.log.warn(`SQL database unreachable; retrying in the background: ${error.message}`, { database: bridge.dialect.label })
    }
    bridge.loop = bridge.run()
    return bridge
  }

  get label(): string {
    return this.dialect.label
  }

  /** The mirrored tables as 'sql→shoal' (or one name when both are the same). */
  tableList(): string[] {
    return this.config.tables.map((t) => (t.sql === t.table ? t.table : `${t.sql}→${t.table}`))
  }

  // ---- attach ------------------------------------------------------------------------------

  private async attach(): Promise<void> {
    await this.dialect.connect()
    this.connected = true
    try {
      this.epoch = await this.dialect.installBase()
      for (const table of this.config.tables) await this.attachTable(table)
      for (const letter of await this.dialect.deadLetters()) this.letters.set(this.letterKey(letter.table, letter.pk, letter.direction), letter)
      await this.recoverBookmark()
      this.appliedNotDeleted = []
      await this.decideReconcile()
      this.stopWatch()
      this.stopWatch = this.dialect.watch(() => this.wake())
      this.state = 'running'
      this.schemaCheckedAt = this.now()
      this.log.info('SQL bridge attached', { database: this.dialect.label, tables: this.config.tables.map((t) => `${t.sql}→${t.table}`) })
    } catch (error) {
      this.connected = false
      await this.dialect.close().catch(() => undefined)
      throw error
    }
  }

  private async attachTable(config: BridgeTableConfig): Promise<void> {
    const sql = await this.dialect.describeTable(config.sql)
    const shoal = this.db.tables().find((t) => t.name === config.table) ?? null
    const plan = planMirror(this.dialect.name, config, sql, shoal)
    if (plan.createSql !== null) {
      await this.dialect.createTable(config.sql, plan.createSql, plan.schema.primaryKey)
      this.log.info('created SQL table from the Shoal schema', { table: config.sql })
    }
    for (const column of plan.addSql) {
      await this.dialect.addColumn(config.sql, column.name, column.sqlType)
      this.log.info('added column to SQL table', { table: config.sql, column: column.name, type: column.sqlType })
    }
    const schema = await this.db.defineTable(plan.schema)
    const had = await this.dialect.hasCapture(plan.spec)
    // First attach: capture every existing row once (the initial load). Columns SQL gained while
    // the peer was stopped: capture their values once (old triggers did not list them).
    const snapshot = !had ? 'all' : shoal !== null && plan.newInShoal.length > 0 ? plan.newInShoal : null
    await this.dialect.installCapture(plan.spec, plan.counters, snapshot)
    const previous = this.mirrors.get(config.sql)
    const mirror: Mirror = {
      config,
      spec: plan.spec,
      schema,
      counters: plan.counters,
      captured: previous?.captured ?? 0,
      writtenBack: previous?.writtenBack ?? 0,
      pending: 0,
      oldestAt: null,
      loading: null,
      error: null,
      reconcile: previous?.reconcile ?? (plan.addSql.length > 0 || plan.createSql !== null ? { phase: 'shoal', after: null, sqlAfter: null } : null),
    }
    this.mirrors.set(config.sql, mirror)
    this.byShoal.set(config.table, mirror)
  }

  /** Deletes the captured changes the last atomic batch applied, if the peer died before it could. */
  private async recoverBookmark(): Promise<void> {
    const raw = await this.db.bookmark(this.captureBookmark)
    if (raw === null) return
    let mark: CaptureBookmark
    try {
      mark = JSON.parse(raw) as CaptureBookmark
    } catch {
      this.log.warn('ignoring an unreadable capture bookmark', { bookmark: this.captureBookmark })
      return
    }
    if (mark.epoch !== this.epoch) {
      this.log.warn('the capture table was recreated since the last batch; its bookmark does not apply', { database: this.dialect.label })
      return
    }
    const ids = idsOfRanges(mark.ids)
    if (ids.length > 0) await this.dialect.deleteCaptured(ids)
  }

  /** Digest roots of the mirrored tables, as recorded at a clean stop. */
  private async roots(): Promise<Record<string, Record<string, string>>> {
    const status = await this.db.status()
    const out: Record<string, Record<string, string>> = {}
    for (const t of status.tables) {
      if (!this.mirroredTables.has(t.name)) continue
      out[t.name] = Object.fromEntries(t.partitions.map((p) => [p.partition, p.digest]))
    }
    return out
  }

  private async decideReconcile(): Promise<void> {
    const raw = await this.db.bookmark(this.cleanBookmark)
    let clean: Record<string, Record<string, string>> | null = null
    try {
      clean = raw === null ? null : (JSON.parse(raw) as Record<string, Record<string, string>>)
    } catch {
      clean = null
    }
    const now = await this.roots()
    for (const mirror of this.mirrors.values()) {
      const before = clean?.[mirror.config.table]
      const after = now[mirror.config.table] ?? {}
      const same = before !== undefined && JSON.stringify(Object.entries(before).sort()) === JSON.stringify(Object.entries(after).sort())
      if (!same) mirror.reconcile ??= { phase: 'shoal', after: null, sqlAfter: null }
    }
    // Running: until the next clean stop, a crash means "compare everything".
    await this.db.applyBatch([], { bookmark: { name: this.cleanBookmark, value: null } })
  }

  // ---- the loop ------------------------------------------------------------------------------

  private wake(): void {
    this.woken = true
    const wakeUp = this.wakeUp
    this.wakeUp = null
    wakeUp?.()
  }

  private async waitForWake(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false
      return
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = null
        resolve()
      }, ms)
      this.wakeUp = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    this.woken = false
  }

  private async run(): Promise<void> {
    let backoff = RECONNECT_MIN_MS
    while (!this.stopping) {
      let more = false
      this.iteration++
      try {
        if (!this.connected) {
          await this.attach()
          this.lastError = null
        }
        if (this.schemaDue || this.now() - this.schemaCheckedAt >= SCHEMA_POLL_MS) await this.syncSchemas()
        more = (await this.drainCapture()) || more
        more = (await this.writeBack()) || more
        more = (await this.reconcileStep()) || more
        this.retryDue()
        if (this.now() - this.statusAt >= STATUS_REFRESH_MS) await this.refreshStatus()
        backoff = RECONNECT_MIN_MS
        if (this.lastError !== null && this.connected) this.lastError = null
      } catch (error) {
        if (this.stopping) break
        this.lastError = message(error)
        const lost = error instanceof SqlConnectError || (isTransientSqlError(error) && this.dialect.name !== 'sqlite')
        this.log.warn(lost ? 'SQL database connection lost; reconnecting' : 'SQL bridge step failed; retrying', { error: this.lastError, retryInMs: backoff })
        if (lost && this.connected) {
          this.connected = false
          this.stopWatch()
          await this.dialect.close().catch(() => undefined)
        }
        await this.waitForWake(backoff)
        backoff = Math.min(RECONNECT_MAX_MS, backoff * 2)
        continue
      }
      if (more) {
        await new Promise((resolve) => setImmediate(resolve))
        this.woken = false
        continue
      }
      if (this.idleWaiters.length > 0) {
        await this.refreshStatus().catch(() => undefined)
        this.notifyIdle()
      }
      await this.waitForWake(this.nextWaitMs())
    }
    for (const w of this.idleWaiters.splice(0)) w.resolve()
  }

  private nextWaitMs(): number {
    let wait = this.config.pollMs
    const now = this.now()
    for (const letter of this.letters.values()) {
      if (letter.direction === 'write') wait = Math.min(wait, Math.max(0, letter.nextAt - now))
    }
    return wait
  }

  // ---- 1. capture ----------------------------------------------------------------------------

  /** Applies one batch of captured changes; true when more are waiting. */
  private async drainCapture(): Promise<boolean> {
    if (this.appliedNotDeleted.length > 0) {
      // The last batch is durable in the store but its deletion failed (a busy or lost
      // database): delete it before reading again, or its changes would be applied twice.
      await this.dialect.deleteCaptured(this.appliedNotDeleted)
      this.appliedNotDeleted = []
    }
    const changes = await this.dialect.readCaptured(this.config.batchRows)
    if (changes.length === 0) {
      this.finishLoading()
      return false
    }
    if (changes.length === this.config.batchRows) await this.startLoading()
    const ops: BatchOp[] = []
    const owners: number[] = []
    const converted: Array<{ conv: ConvertedChange; mirror: Mirror }> = []
    const refused: Array<{ change: CapturedChange; mirror: Mirror | null; reason: string }> = []
    const taken: CapturedChange[] = []
    const unknown = new Set<string>()
    for (const change of changes) {
      const mirror = this.mirrors.get(change.table) ?? null
      if (mirror === null) {
        refused.push({ change, mirror, reason: `SQL table '${change.table}' is not mirrored (any more); the change was dropped` })
        taken.push(change)
        continue
      }
      let conv: ConvertedChange
      try {
        conv = convertChange(mirror.schema, change, this.dialect.jsonAsText, unknown)
      } catch (error) {
        refused.push({ change, mirror, reason: message(error) })
        taken.push(change)
        continue
      }
      if (ops.length + conv.ops.length > MAX_ATOMIC_WRITES) break
      for (const op of conv.ops) {
        ops.push(op)
        owners.push(converted.length)
      }
      converted.push({ conv, mirror })
      taken.push(change)
    }
    const fresh = [...unknown].filter((c) => !this.unknownTried.has(c))
    if (fresh.length > 0) {
      // A column SQL gained that the mirror does not know yet: learn it first, then read again.
      // Once tried, a column that cannot be mirrored (its table is then in error) is left out.
      for (const c of fresh) this.unknownTried.add(c)
      await this.syncSchemas()
      return true
    }
    const ids = taken.map((c) => c.id)
    const bookmark = JSON.stringify({ epoch: this.epoch, ids: idRanges(ids) } satisfies CaptureBookmark)
    const results = await this.db.applyBatch(ops, { bookmark: { name: this.captureBookmark, value: bookmark }, source: BRIDGE_SOURCE })
    const failed = new Map<number, string>()
    results.forEach((result, i) => {
      // An update or increment of a row Shoal deleted: the delete wins (README, "How rows merge");
      // write-back then removes the row from SQL as well.
      if (!result.ok && !(result.error instanceof RowNotFoundError) && !failed.has(owners[i]!)) failed.set(owners[i]!, result.error.message)
    })
    converted.forEach(({ conv, mirror }, i) => {
      // Compare the merged row with SQL: concurrent changes from the mesh may make them differ.
      this.markDirty(mirror.schema.name, conv.key, null)
      const reason = failed.get(i)
      if (reason === undefined) {
        mirror.captured++
        if (mirror.loading !== null) mirror.loading.done++
      } else {
        refused.push({ change: conv.change, mirror, reason })
      }
    })
    this.appliedNotDeleted = ids
    await this.dialect.deleteCaptured(ids)
    this.appliedNotDeleted = []
    for (const r of refused) await this.refuseCapture(r.change, r.mirror, r.reason)
    for (const [i, { conv, mirror }] of converted.entries()) {
      if (!failed.has(i)) await this.clearLetter(mirror.spec.sqlTable, conv.change.pk, 'capture')
    }
    this.reportLoading(false)
    return changes.length === this.config.batchRows
  }

  private async startLoading(): Promise<void> {
    if ([...this.mirrors.values()].some((m) => m.loading !== null)) return
    for (const p of await this.dialect.pending()) {
      const mirror = this.mirrors.get(p.table)
      if (mirror !== undefined) mirror.loading = { done: 0, total: p.count }
    }
    this.reportLoading(false)
  }

  private finishLoading(): void {
    if (![...this.mirrors.values()].some((m) => m.loading !== null)) return
    this.reportLoading(true)
    for (const mirror of this.mirrors.values()) mirror.loading = null
  }

  private reportLoading(finished: boolean): void {
    if (this.onProgress === undefined) return
    for (const mirror of this.mirrors.values()) {
      if (mirror.loading !== null) this.onProgress({ table: mirror.config.table, done: mirror.loading.done, total: mirror.loading.total, finished })
    }
  }

  private async refuseCapture(change: CapturedChange, mirror: Mirror | null, reason: string): Promise<void> {
    this.log.warn('captured SQL change refused; kept as a dead letter', { table: change.table, key: quote(change.pk), reason: quote(reason, 300) })
    const letter: DeadLetter = {
      table: change.table,
      pk: change.pk,
      direction: 'capture',
      reason: trimReason(reason),
      data: JSON.stringify({ op: change.op, data: change.data, at: change.at }),
      attempts: 1,
      firstAt: this.now(),
      nextAt: 0,
    }
    await this.dialect.putDeadLetter(letter)
    this.letters.set(this.letterKey(letter.table, letter.pk, 'capture'), letter)
    if (mirror !== null) {
      // The SQL row is set back to the Shoal row, so the two never silently disagree.
      try {
        this.markDirty(mirror.schema.name, normalizeKeyValue('key', mirror.schema.columns[mirror.schema.primaryKey]!, change.pk), null)
      } catch {
        // A key Shoal cannot hold has no Shoal row to set it back to.
      }
    }
  }

  // ---- 2. write-back -------------------------------------------------------------------------

  private markDirty(table: string, key: string, partition: string | null): void {
    let keys = this.dirty.get(table)
    if (keys === undefined) {
      keys = new Map()
      this.dirty.set(table, keys)
    }
    if (partition !== null || !keys.has(key)) keys.set(key, partition)
  }

  /** Writes back one batch of changed rows per table; true when more are waiting. */
  private async writeBack(): Promise<boolean> {
    let more = false
    const now = this.now()
    // A snapshot: rows deferred below are marked again and wait for the next turn.
    for (const [table, keys] of [...this.dirty]) {
      const mirror = this.byShoal.get(table)
      if (mirror === undefined) {
        // Not attached yet (or not mirrored): kept until it is.
        continue
      }
      if (mirror.error !== null) continue
      const batch = new Map<string, string | null>()
      for (const [key, partition] of keys) {
        keys.delete(key)
        const letter = this.letters.get(this.letterKey(mirror.spec.sqlTable, key, 'write'))
        // A refused row waits for its retry time; the retry writes the row as it is then.
        if (letter !== undefined && letter.nextAt > now) continue
        batch.set(key, partition)
        if (batch.size >= this.config.batchRows) break
      }
      if (keys.size === 0) this.dirty.delete(table)
      if (batch.size > 0) await this.writeRows(mirror, batch)
      if ((this.dirty.get(table)?.size ?? 0) > 0) more = true
    }
    return more
  }

  private async writeRows(mirror: Mirror, keys: Map<string, string | null>): Promise<void> {
    const wanted = new Map<string, ShoalRow>()
    const table = this.db.table(mirror.schema.name)
    for (const [key, partition] of keys) {
      const stored = await table.stored(key, partition === null || mirror.schema.partitionBy === null ? undefined : { partition })
      wanted.set(key, stored === null ? null : { alive: stored.alive, values: stored.row ?? {} })
    }
    try {
      const { written, deferred } = await this.dialect.writeTx((tx) => this.writeInTx(tx, mirror, wanted))
      mirror.writtenBack += written
      for (const key of deferred) this.markDirty(mirror.schema.name, key, keys.get(key) ?? null)
      for (const key of keys.keys()) if (!deferred.has(key)) await this.clearLetter(mirror.spec.sqlTable, key, 'write')
    } catch (error) {
      if (error instanceof SqlConnectError || isTransientSqlError(error)) {
        for (const [key, partition] of keys) this.markDirty(mirror.schema.name, key, partition)
        throw error
      }
      if (keys.size > 1) {
        // Find the rows the database refuses, one transaction each; the others go through.
        for (const [key, partition] of keys) await this.writeRows(mirror, new Map([[key, partition]]))
        return
      }
      const [key] = keys.keys()
      await this.refuseWrite(mirror, key!, message(error))
    }
  }

  private async writeInTx(tx: SqlWriteTx, mirror: Mirror, wanted: Map<string, ShoalRow>): Promise<{ written: number; deferred: Set<string> }> {
    const schema = mirror.schema
    const rows = await tx.lockRows(mirror.spec, [...wanted.keys()].map((k) => nativeKey(schema, k)))
    // After the locks: a SQL client's change to these rows is committed (with its capture) or waits for us.
    const pending = this.pendingKeys(schema, await tx.pendingKeys(mirror.spec))
    const deferred = new Set<string>()
    const ready = new Map<string, ShoalRow>()
    for (const [key, row] of wanted) {
      if (pending.has(key)) deferred.add(key)
      else ready.set(key, row)
    }
    const current = new Map<string, Readonly<Record<string, unknown>>>()
    for (const row of rows) {
      const key = keyOfSqlRow(schema, row)
      if (key !== null) current.set(key, row)
    }
    const plan = planWrites(this.dialect.name, mirror.spec, schema, ready, current, this.dialect.jsonAsText)
    await tx.upsert(mirror.spec, plan.upserts.map((u) => u.row))
    await tx.delete(mirror.spec, plan.deletes.map((d) => d.native))
    return { written: plan.upserts.length + plan.deletes.length, deferred }
  }

  /** Capture-table key texts as Shoal keys (a key Shoal cannot hold is refused when drained). */
  private pendingKeys(schema: ResolvedSchema, texts: ReadonlySet<string>): Set<string> {
    const out = new Set<string>()
    for (const text of texts) {
      try {
        out.add(normalizeKeyValue('key', schema.columns[schema.primaryKey]!, text))
      } catch {
        // Not a key this table can hold.
      }
    }
    return out
  }

  private letterKey(table: string, pk: string, direction: string): string {
    return `${table}\u0000${pk}\u0000${direction}`
  }

  private async refuseWrite(mirror: Mirror, key: string, reason: string): Promise<void> {
    const id = this.letterKey(mirror.spec.sqlTable, key, 'write')
    const previous = this.letters.get(id)
    const attempts = (previous?.attempts ?? 0) + 1
    const now = this.now()
    const letter: DeadLetter = {
      table: mirror.spec.sqlTable,
      pk: key,
      direction: 'write',
      reason: trimReason(reason),
      data: null,
      attempts,
      firstAt: previous?.firstAt ?? now,
      nextAt: nextAttemptAt(now, attempts, this.config.retryMinMs, this.config.retryMaxMs, this.random),
    }
    this.letters.set(id, letter)
    await this.dialect.putDeadLetter(letter)
    this.log.warn('SQL refused a write-back; dead-lettered, will retry', { table: mirror.spec.sqlTable, key: quote(key), attempts, reason: quote(reason, 300) })
  }

  private async clearLetter(table: string, pk: string, direction: 'write' | 'capture'): Promise<void> {
    const id = this.letterKey(table, pk, direction)
    if (!this.letters.has(id)) return
    this.letters.delete(id)
    await this.dialect.deleteDeadLetter(table, pk, direction)
    this.log.info(direction === 'write' ? 'dead-lettered write-back went through' : 'a later capture of a dead-lettered row went through', { table, key: quote(pk) })
  }

  /** Write dead letters due for a retry: their rows are compared and written again. */
  private retryDue(): void {
    const now = this.now()
    for (const letter of this.letters.values()) {
      if (letter.direction !== 'write' || letter.nextAt > now) continue
      const mirror = this.mirrors.get(letter.table)
      if (mirror !== undefined) this.markDirty(mirror.schema.name, letter.pk, null)
    }
  }

  // ---- 3. reconcile --------------------------------------------------------------------------

  private async reconcileStep(): Promise<boolean> {
    let more = false
    for (const mirror of this.mirrors.values()) {
      const r = mirror.reconcile
      if (r === null || mirror.error !== null) continue
      if (r.phase === 'shoal') {
        // Every live Shoal row is compared with SQL (written where it differs).
        const page = await this.db.table(mirror.schema.name).scan({ limit: RECONCILE_PAGE_ROWS, ...(r.after === null ? {} : { after: r.after }) })
        for (const row of page.rows) {
          const key = normalizeKeyValue('key', mirror.schema.columns[mirror.schema.primaryKey]!, row[mirror.schema.primaryKey])
          const partition = mirror.schema.partitionBy === null ? '' : normalizeKeyValue('partition', mirror.schema.columns[mirror.schema.partitionBy]!, row[mirror.schema.partitionBy])
          this.markDirty(mirror.schema.name, key, partition)
        }
        if (page.next === null) mirror.reconcile = { phase: 'sql', after: null, sqlAfter: null }
        else r.after = page.next
      } else {
        const done = await this.reconcileSqlPage(mirror, r.sqlAfter)
        if (done.last === undefined) {
          mirror.reconcile = null
          this.log.info('SQL table compared with Shoal', { table: mirror.spec.sqlTable })
        } else {
          r.sqlAfter = done.last
        }
      }
      more = true
    }
    return more
  }

  /**
   * SQL rows of one page: Shoal deleted it → write-back deletes it; Shoal never had it (its
   * store was replaced) → import it, unless a captured change of it is pending (the drain brings
   * it). Runs in a write transaction so no SQL client changes these rows in between.
   */
  private async reconcileSqlPage(mirror: Mirror, after: unknown): Promise<{ last: unknown }> {
    const schema = mirror.schema
    const rows = await this.dialect.readRows(mirror.spec, after, RECONCILE_PAGE_ROWS)
    if (rows.length === 0) return { last: undefined }
    const last = rows[rows.length - 1]![schema.primaryKey]
    await this.dialect.writeTx(async (tx) => {
      const keys = rows.map((row) => keyOfSqlRow(schema, row)).filter((k): k is string => k !== null)
      const locked = await tx.lockRows(mirror.spec, keys.map((k) => nativeKey(schema, k)))
      const pending = this.pendingKeys(schema, await tx.pendingKeys(mirror.spec))
      const imports: ConvertedChange[] = []
      for (const row of locked) {
        const key = keyOfSqlRow(schema, row)
        if (key === null || pending.has(key)) continue
        const stored = await this.db.table(schema.name).stored(key)
        if (stored === null) {
          imports.push(convertChange(schema, { id: 0, table: mirror.spec.sqlTable, op: 'S', pk: key, data: row, at: this.now() }, this.dialect.jsonAsText, new Set()))
        } else if (!stored.alive) {
          this.markDirty(schema.name, key, stored.partition)
        }
      }
      if (imports.length > 0) {
        const results = await this.db.applyBatch(imports.flatMap((i) => i.ops), { source: BRIDGE_SOURCE })
        results.forEach((result) => {
          if (!result.ok) this.log.warn('a SQL row could not be imported into Shoal', { table: mirror.spec.sqlTable, reason: quote(result.error.message, 300) })
        })
        mirror.captured += results.filter((r) => r.ok).length
      }
    })
    return { last: rows.length < RECONCILE_PAGE_ROWS ? undefined : last }
  }

  // ---- 4. schema changes ---------------------------------------------------------------------

  /** ADD COLUMN on either side reaches the other; anything else stops that table with a message. */
  private async syncSchemas(): Promise<void> {
    this.schemaDue = false
    this.schemaCheckedAt = this.now()
    for (const mirror of this.mirrors.values()) {
      const sql = await this.dialect.describeTable(mirror.spec.sqlTable)
      try {
        checkNothingDropped(mirror.spec, sql)
        const shoal = this.db.tables().find((t) => t.name === mirror.config.table) ?? null
        const plan = planMirror(this.dialect.name, mirror.config, sql, shoal)
        if (plan.addSql.length === 0 && plan.newInShoal.length === 0) {
          if (mirror.error !== null) this.log.info('SQL table mirrored again', { table: mirror.spec.sqlTable })
          mirror.error = null
          continue
        }
        for (const column of plan.addSql) {
          await this.dialect.addColumn(mirror.spec.sqlTable, column.name, column.sqlType)
          this.log.info('column added in Shoal: added to the SQL table', { table: mirror.spec.sqlTable, column: column.name, type: column.sqlType })
        }
        if (plan.newInShoal.length > 0) this.log.info('column added in SQL: added to the Shoal schema', { table: mirror.spec.sqlTable, columns: plan.newInShoal })
        mirror.schema = await this.db.defineTable(plan.schema)
        mirror.spec = plan.spec
        mirror.counters = plan.counters
        await this.dialect.installCapture(plan.spec, plan.counters, plan.newInShoal.length > 0 ? plan.newInShoal : null)
        // Rows now have a column SQL did not: write them all once.
        if (plan.addSql.length > 0) mirror.reconcile = { phase: 'shoal', after: null, sqlAfter: null }
        mirror.error = null
      } catch (error) {
        if (isTransientSqlError(error) || error instanceof SqlConnectError) throw error
        if (mirror.error !== message(error)) this.log.error('SQL schema change refused; table not mirrored until it is undone', { table: mirror.spec.sqlTable, error: message(error) })
        mirror.error = message(error)
      }
    }
  }

  // ---- status and lifecycle ------------------------------------------------------------------

  private async refreshStatus(): Promise<void> {
    this.statusAt = this.now()
    const pending = new Map((await this.dialect.pending()).map((p) => [p.table, p]))
    for (const mirror of this.mirrors.values()) {
      const p = pending.get(mirror.spec.sqlTable)
      mirror.pending = p?.count ?? 0
      mirror.oldestAt = p?.oldestAt ?? null
    }
  }

  status(): BridgeStatus {
    const now = this.now()
    const tables: BridgeTableStatus[] = this.config.tables.map((config) => {
      const mirror = this.mirrors.get(config.sql)
      let letters = 0
      for (const letter of this.letters.values()) if (letter.table === config.sql) letters++
      return {
        table: config.table,
        sqlTable: config.sql,
        captured: mirror?.captured ?? 0,
        pending: mirror?.pending ?? 0,
        oldestPendingSeconds: mirror?.oldestAt == null ? null : Math.max(0, (now - mirror.oldestAt) / 1000),
        writtenBack: mirror?.writtenBack ?? 0,
        deadLetters: letters,
        loading: mirror?.loading === null || mirror === undefined ? null : { ...mirror.loading },
        error: mirror?.error ?? null,
      }
    })
    const deadLetters = [...this.letters.values()]
      .sort((a, b) => a.firstAt - b.firstAt)
      .slice(0, MAX_DEAD_LETTERS_SHOWN)
      .map((l) => ({
        table: this.mirrors.get(l.table)?.config.table ?? l.table,
        key: l.pk,
        direction: l.direction,
        reason: l.reason,
        attempts: l.attempts,
        nextAttempt: l.direction === 'write' ? new Date(l.nextAt).toISOString() : null,
      }))
    return { database: this.dialect.label, dialect: this.dialect.name, state: this.state, error: this.lastError, push: this.dialect.pushes, tables, deadLetters }
  }

  /**
   * Resolves once the loop has run a full pass that started after this call and found nothing
   * more to do (everything captured so far is in the store, every changed row written back).
   */
  settled(): Promise<void> {
    if (this.stopping) return Promise.resolve()
    return new Promise((resolve) => {
      this.idleWaiters.push({ after: this.iteration, resolve })
      this.wake()
    })
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0) return
    const still: typeof this.idleWaiters = []
    for (const w of this.idleWaiters) {
      if (w.after < this.iteration) w.resolve()
      else still.push(w)
    }
    this.idleWaiters = still
  }

  /**
   * Stops the loop, writes back what changed just before (for up to STOP_FLUSH_MS), records the
   * clean-stop bookmark if nothing is left to write, and closes the connection. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    this.wake()
    await this.loop
    this.unsubscribe()
    this.stopWatch()
    for (const w of this.idleWaiters.splice(0)) w.resolve()
    if (this.connected) {
      const deadline = this.now() + STOP_FLUSH_MS
      try {
        while (this.dirty.size > 0 && this.now() < deadline) await this.writeBack()
        const reconciling = [...this.mirrors.values()].some((m) => m.reconcile !== null)
        if (this.dirty.size === 0 && !reconciling && this.db.isOpen) {
          await this.db.applyBatch([], { bookmark: { name: this.cleanBookmark, value: JSON.stringify(await this.roots()) } })
        }
      } catch (error) {
        this.log.warn('SQL bridge stopped before writing back every change; the next start compares the tables', { error: message(error) })
      }
    }
    this.state = 'stopped'
    this.connected = false
    await this.dialect.close()
  }
}
