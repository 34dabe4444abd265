import { randomUUID } from 'node:crypto'
import { watch as watchFile, type FSWatcher } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import Database from 'better-sqlite3'
import { SqlConnectError } from './errors.js'
import {
  CAPTURE_TABLE,
  DEAD_LETTER_TABLE,
  STATE_TABLE,
  type CapturedChange,
  type CaptureOp,
  type DeadLetter,
  type DeadLetterDirection,
  type MirrorSpec,
  type PendingSummary,
  type SqlColumnInfo,
  type SqlDialect,
  type SqlWriteTx,
} from './dialect.js'

/*
 * SQLite through better-sqlite3 (synchronous: every statement here runs on the event loop, so
 * each is kept short and a busy database is never waited on for long).
 *
 * - WAL mode, so the till application keeps reading while the bridge writes, and the bridge
 *   reads while the till writes.
 * - Echo suppression: the bridge's write transaction inserts a row into `shoal_applying` first
 *   and deletes it before COMMIT, and the triggers fire only WHEN NOT EXISTS a row there. SQLite
 *   has one writer at a time and other connections never see uncommitted rows, so only the
 *   bridge's own statements see the marker. (A function registered on the bridge's connection
 *   would not do: the till's connection, which runs the same triggers, would not know it.)
 * - Wake-ups: a file watch on the database and its WAL (inotify: the till's commit wakes the
 *   bridge at once) plus `PRAGMA data_version`, which changes when another connection commits,
 *   read every SQLITE_DATA_VERSION_POLL_MS as the fallback.
 */

/** How long a statement waits for another connection's write lock before giving up (blocks the event loop). */
export const SQLITE_BUSY_TIMEOUT_MS = 50
/** How often `PRAGMA data_version` is read when the file watch is quiet (one cheap in-process call). */
export const SQLITE_DATA_VERSION_POLL_MS = 5
/** Capture time in ms since the epoch, in every SQLite version (unixepoch('subsec') needs 3.42). */
const NOW_MS = `((julianday('now') - 2440587.5) * 86400000.0)`
/** Keys bound per statement (SQLite's default limit is 32,766 variables; keys go as one JSON array). */
const APPLYING_TABLE = 'shoal_applying'

function q(name: string): string {
  return `"${name}"`
}

function lit(text: string): string {
  return `'${text.replace(/'/g, "''")}'`
}

function rowJson(spec: MirrorSpec, prefix: string, columns: readonly string[] = spec.columns.map((c) => c.name)): string {
  return `json_object(${columns.map((c) => `${lit(c)}, ${prefix}${q(c)}`).join(', ')})`
}

export class SqliteDialect implements SqlDialect {
  readonly name = 'sqlite' as const
  readonly jsonAsText = true
  pushes = false
  private db: Database.Database | null = null
  private readonly statements = new Map<string, Database.Statement>()

  constructor(readonly path: string) {}

  get label(): string {
    return `sqlite:${this.path}`
  }

  async connect(): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true })
      const db = new Database(this.path, { timeout: SQLITE_BUSY_TIMEOUT_MS })
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      this.db = db
    } catch (error) {
      throw new SqlConnectError(`cannot open SQLite database '${this.path}': ${(error as Error).message}`, { cause: error })
    }
  }

  async close(): Promise<void> {
    this.statements.clear()
    this.db?.close()
    this.db = null
  }

  private get conn(): Database.Database {
    if (this.db === null) throw new SqlConnectError(`SQLite database '${this.path}' is not open`)
    return this.db
  }

  private prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql)
    if (statement === undefined) {
      statement = this.conn.prepare(sql)
      this.statements.set(sql, statement)
    }
    return statement
  }

  async describeTable(table: string): Promise<SqlColumnInfo[] | null> {
    const rows = this.conn.prepare(`SELECT name, type, pk FROM pragma_table_info(?)`).all(table) as Array<{ name: string; type: string; pk: number }>
    if (rows.length === 0) return null
    return rows.map((r) => ({ name: r.name, type: r.type, primaryKey: r.pk > 0 }))
  }

  async createTable(table: string, columns: ReadonlyArray<{ name: string; sqlType: string }>, primaryKey: string): Promise<void> {
    const defs = columns.map((c) => `${q(c.name)} ${c.sqlType}${c.name === primaryKey ? ' NOT NULL PRIMARY KEY' : ''}`)
    this.conn.exec(`CREATE TABLE IF NOT EXISTS ${q(table)} (${defs.join(', ')})`)
  }

  async addColumn(table: string, column: string, sqlType: string): Promise<void> {
    this.conn.exec(`ALTER TABLE ${q(table)} ADD COLUMN ${q(column)} ${sqlType}`)
    this.statements.clear()
  }

  async installBase(): Promise<string> {
    // AUTOINCREMENT: ids are never reused after deletes, so a bookmark of applied ids stays exact.
    this.conn.exec(`
      CREATE TABLE IF NOT EXISTS ${CAPTURE_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, op TEXT NOT NULL, pk TEXT NOT NULL, data TEXT NOT NULL, at REAL NOT NULL DEFAULT (${NOW_MS}));
      CREATE INDEX IF NOT EXISTS ${CAPTURE_TABLE}_tbl ON ${CAPTURE_TABLE} (tbl, pk);
      CREATE TABLE IF NOT EXISTS ${APPLYING_TABLE} (x INTEGER);
      CREATE TABLE IF NOT EXISTS ${DEAD_LETTER_TABLE} (tbl TEXT NOT NULL, pk TEXT NOT NULL, direction TEXT NOT NULL, reason TEXT NOT NULL, data TEXT, attempts INTEGER NOT NULL, first_at REAL NOT NULL, next_at REAL NOT NULL, PRIMARY KEY (tbl, pk, direction));
      CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (k TEXT PRIMARY KEY, v TEXT NOT NULL);
    `)
    // A marker row left by a crash inside a write transaction cannot exist (it is never committed),
    // but an operator's stray insert would silence capture: clear it.
    this.conn.exec(`DELETE FROM ${APPLYING_TABLE}`)
    this.conn.prepare(`INSERT OR IGNORE INTO ${STATE_TABLE} (k, v) VALUES ('epoch', ?)`).run(randomUUID())
    return (this.conn.prepare(`SELECT v FROM ${STATE_TABLE} WHERE k = 'epoch'`).get() as { v: string }).v
  }

  private triggerNames(spec: MirrorSpec): string[] {
    return ['i', 'u', 'k', 'd'].map((s) => `shoal_${spec.sqlTable}_${s}`)
  }

  async hasCapture(spec: MirrorSpec): Promise<boolean> {
    const names = this.triggerNames(spec)
    const found = this.conn.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger' AND name IN (${names.map(() => '?').join(', ')})`).get(...names) as { n: number }
    return found.n === names.length
  }

  async installCapture(spec: MirrorSpec, counters: readonly string[], snapshot: readonly string[] | 'all' | null): Promise<void> {
    const t = q(spec.sqlTable)
    const pk = q(spec.primaryKey)
    const tbl = lit(spec.sqlTable)
    const when = `NOT EXISTS (SELECT 1 FROM ${APPLYING_TABLE})`
    const insert = `INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data)`
    const changed = spec.columns
      .filter((c) => c.name !== spec.primaryKey)
      .map((c) => {
        const v = counters.includes(c.name) ? `coalesce(NEW.${q(c.name)}, 0) - coalesce(OLD.${q(c.name)}, 0)` : `NEW.${q(c.name)}`
        return `SELECT ${lit(c.name)} AS k, ${v} AS v WHERE NEW.${q(c.name)} IS NOT OLD.${q(c.name)}`
      })
    const [ti, tu, tk, td] = this.triggerNames(spec).map(q) as [string, string, string, string]
    const statements = [
      ...this.triggerNames(spec).map((n) => `DROP TRIGGER IF EXISTS ${q(n)}`),
      `CREATE TRIGGER ${ti} AFTER INSERT ON ${t} WHEN ${when} BEGIN ${insert} VALUES (${tbl}, 'I', NEW.${pk}, ${rowJson(spec, 'NEW.')}); END`,
      // Only the columns that changed; a counter as its increment. No row when nothing changed.
      changed.length === 0
        ? `CREATE TRIGGER ${tu} AFTER UPDATE ON ${t} WHEN 0 BEGIN SELECT 1; END`
        : `CREATE TRIGGER ${tu} AFTER UPDATE ON ${t} WHEN ${when} AND NEW.${pk} IS OLD.${pk} BEGIN ${insert} ` +
          `SELECT ${tbl}, 'U', NEW.${pk}, d FROM (SELECT json_group_object(k, v) AS d, count(*) AS n FROM (${changed.join(' UNION ALL ')})) WHERE n > 0; END`,
      // A changed primary key is a delete of the old row and an insert of the new one.
      `CREATE TRIGGER ${tk} AFTER UPDATE ON ${t} WHEN ${when} AND NEW.${pk} IS NOT OLD.${pk} BEGIN ` +
        `${insert} VALUES (${tbl}, 'D', OLD.${pk}, '{}'); ${insert} VALUES (${tbl}, 'I', NEW.${pk}, ${rowJson(spec, 'NEW.')}); END`,
      `CREATE TRIGGER ${td} AFTER DELETE ON ${t} WHEN ${when} BEGIN ${insert} VALUES (${tbl}, 'D', OLD.${pk}, '{}'); END`,
    ]
    if (snapshot === 'all') {
      statements.push(`${insert} SELECT ${tbl}, 'S', ${pk}, ${rowJson(spec, '')} FROM ${t} ORDER BY ${pk}`)
    } else if (snapshot !== null && snapshot.length > 0) {
      statements.push(
        `${insert} SELECT ${tbl}, 'C', ${pk}, ${rowJson(spec, '', [spec.primaryKey, ...snapshot])} FROM ${t} ` +
          `WHERE ${snapshot.map((c) => `${q(c)} IS NOT NULL`).join(' OR ')} ORDER BY ${pk}`,
      )
    }
    // One write transaction: no till write can fall between the triggers and the snapshot.
    this.conn.transaction(() => {
      for (const sql of statements) this.conn.exec(sql)
    }).immediate()
    this.statements.clear()
  }

  async dropCapture(spec: MirrorSpec): Promise<void> {
    for (const n of this.triggerNames(spec)) this.conn.exec(`DROP TRIGGER IF EXISTS ${q(n)}`)
  }

  async readCaptured(limit: number): Promise<CapturedChange[]> {
    const rows = this.prepare(`SELECT id, tbl, op, pk, data, at FROM ${CAPTURE_TABLE} ORDER BY id LIMIT ?`).all(limit) as Array<{ id: number; tbl: string; op: string; pk: string | number; data: string; at: number }>
    return rows.map((r) => ({ id: r.id, table: r.tbl, op: r.op as CaptureOp, pk: String(r.pk), data: JSON.parse(r.data) as Record<string, unknown>, at: r.at }))
  }

  async deleteCaptured(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return
    this.prepare(`DELETE FROM ${CAPTURE_TABLE} WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(ids))
  }

  async pending(): Promise<PendingSummary[]> {
    const rows = this.prepare(`SELECT tbl, count(*) AS n, min(at) AS oldest FROM ${CAPTURE_TABLE} GROUP BY tbl`).all() as Array<{ tbl: string; n: number; oldest: number | null }>
    return rows.map((r) => ({ table: r.tbl, count: r.n, oldestAt: r.oldest }))
  }

  async writeTx<T>(fn: (tx: SqlWriteTx) => Promise<T>): Promise<T> {
    const conn = this.conn
    conn.exec('BEGIN IMMEDIATE')
    try {
      conn.exec(`INSERT INTO ${APPLYING_TABLE} (x) VALUES (1)`)
      const result = await fn(this.tx)
      conn.exec(`DELETE FROM ${APPLYING_TABLE}`)
      conn.exec('COMMIT')
      return result
    } catch (error) {
      if (conn.inTransaction) conn.exec('ROLLBACK')
      throw error
    }
  }

  private readonly tx: SqlWriteTx = {
    lockRows: async (spec, keys) => {
      if (keys.length === 0) return []
      // The write transaction already holds SQLite's only write lock: these rows cannot change under it.
      const rows = this.prepare(`SELECT ${rowJson(spec, '')} AS r FROM ${q(spec.sqlTable)} WHERE ${q(spec.primaryKey)} IN (SELECT value FROM json_each(?))`).all(JSON.stringify(keys)) as Array<{ r: string }>
      return rows.map((row) => JSON.parse(row.r) as Record<string, unknown>)
    },
    pendingKeys: async (spec) => {
      const rows = this.prepare(`SELECT DISTINCT pk FROM ${CAPTURE_TABLE} WHERE tbl = ?`).all(spec.sqlTable) as Array<{ pk: string | number }>
      return new Set(rows.map((r) => String(r.pk)))
    },
    upsert: async (spec, rows) => {
      if (rows.length === 0) return
      const columns = spec.columns.map((c) => c.name)
      const set = columns.filter((c) => c !== spec.primaryKey).map((c) => `${q(c)} = excluded.${q(c)}`)
      const statement = this.prepare(
        `INSERT INTO ${q(spec.sqlTable)} (${columns.map(q).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})` +
          (set.length === 0 ? ` ON CONFLICT (${q(spec.primaryKey)}) DO NOTHING` : ` ON CONFLICT (${q(spec.primaryKey)}) DO UPDATE SET ${set.join(', ')}`),
      )
      for (const row of rows) statement.run(...columns.map((c) => row[c] ?? null))
    },
    delete: async (spec, keys) => {
      if (keys.length === 0) return
      this.prepare(`DELETE FROM ${q(spec.sqlTable)} WHERE ${q(spec.primaryKey)} IN (SELECT value FROM json_each(?))`).run(JSON.stringify(keys))
    },
  }

  async readRows(spec: MirrorSpec, after: unknown, limit: number): Promise<Array<Record<string, unknown>>> {
    const pk = q(spec.primaryKey)
    const rows = (
      after === null
        ? this.prepare(`SELECT ${rowJson(spec, '')} AS r FROM ${q(spec.sqlTable)} ORDER BY ${pk} LIMIT ?`).all(limit)
        : this.prepare(`SELECT ${rowJson(spec, '')} AS r FROM ${q(spec.sqlTable)} WHERE ${pk} > ? ORDER BY ${pk} LIMIT ?`).all(after, limit)
    ) as Array<{ r: string }>
    return rows.map((row) => JSON.parse(row.r) as Record<string, unknown>)
  }

  async putDeadLetter(d: DeadLetter): Promise<void> {
    this.prepare(
      `INSERT INTO ${DEAD_LETTER_TABLE} (tbl, pk, direction, reason, data, attempts, first_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ` +
        `ON CONFLICT (tbl, pk, direction) DO UPDATE SET reason = excluded.reason, data = excluded.data, attempts = excluded.attempts, next_at = excluded.next_at`,
    ).run(d.table, d.pk, d.direction, d.reason, d.data, d.attempts, d.firstAt, d.nextAt)
  }

  async deleteDeadLetter(table: string, pk: string, direction: DeadLetterDirection): Promise<void> {
    this.prepare(`DELETE FROM ${DEAD_LETTER_TABLE} WHERE tbl = ? AND pk = ? AND direction = ?`).run(table, pk, direction)
  }

  async deadLetters(): Promise<DeadLetter[]> {
    const rows = this.prepare(`SELECT tbl, pk, direction, reason, data, attempts, first_at, next_at FROM ${DEAD_LETTER_TABLE} ORDER BY first_at`).all() as Array<{
      tbl: string
      pk: string
      direction: DeadLetterDirection
      reason: string
      data: string | null
      attempts: number
      first_at: number
      next_at: number
    }>
    return rows.map((r) => ({ table: r.tbl, pk: r.pk, direction: r.direction, reason: r.reason, data: r.data, attempts: r.attempts, firstAt: r.first_at, nextAt: r.next_at }))
  }

  watch(wake: () => void): () => void {
    const watchers: FSWatcher[] = []
    const base = basename(this.path)
    try {
      const watcher = watchFile(dirname(this.path), (_event, file) => {
        if (file === base || file === `${base}-wal`) wake()
      })
      watcher.on('error', () => undefined)
      watchers.push(watcher)
      this.pushes = true
    } catch {
      this.pushes = false
    }
    let version = this.dataVersion()
    const timer = setInterval(() => {
      const now = this.dataVersion()
      if (now !== version) {
        version = now
        wake()
      }
    }, SQLITE_DATA_VERSION_POLL_MS)
    timer.unref()
    return () => {
      clearInterval(timer)
      for (const w of watchers) w.close()
    }
  }

  private dataVersion(): number {
    try {
      return this.db === null ? -1 : (this.db.pragma('data_version', { simple: true }) as number)
    } catch {
      return -1
    }
  }
}
