import { randomUUID } from 'node:crypto'
import mysql from 'mysql2/promise'
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
import { redactUrl } from './postgres.js'

/*
 * MySQL and MariaDB through mysql2.
 *
 * - Capture: three triggers per table listing its columns (MySQL cannot render a whole NEW row
 *   generically), regenerated when a column is added. An update keeps only the columns whose
 *   value changed (`<=>`, NULL-safe), counters as NEW − OLD.
 * - Echo suppression: the session variable @shoal_applying, set on the bridge's own connection
 *   around its write transactions; the triggers skip when it is set.
 * - DDL commits implicitly in MySQL, so triggers and the snapshot cannot share a transaction:
 *   the triggers are created first, then the snapshot is copied under LOCK TABLES … READ, which
 *   waits for transactions in flight on the table. A change captured between the two has a lower
 *   id than the snapshot's rows and is applied before them; the snapshot's absolute values then
 *   hold it already, so nothing is counted twice.
 * - No push notifications: the bridge polls the capture table (one indexed query).
 * - READ COMMITTED, so a write-back transaction's reads of the capture table see what other
 *   clients committed a moment ago.
 */

function q(name: string): string {
  return `\`${name}\``
}

function lit(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

function rowJson(prefix: string, columns: readonly string[]): string {
  return `JSON_OBJECT(${columns.map((c) => `${lit(c)}, ${prefix}${q(c)}`).join(', ')})`
}

/** A JSON_OBJECT result: mysql2 parses it already when the server types it JSON (MySQL), not when it says LONGTEXT (MariaDB). */
function parse(value: unknown): Record<string, unknown> {
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) return value as Record<string, unknown>
  return JSON.parse(typeof value === 'string' ? value : String(value)) as Record<string, unknown>
}

export class MysqlDialect implements SqlDialect {
  readonly name = 'mysql' as const
  readonly jsonAsText = true
  readonly pushes = false
  private connection: mysql.Connection | null = null

  constructor(readonly url: string) {}

  get label(): string {
    return redactUrl(this.url)
  }

  async connect(): Promise<void> {
    try {
      const connection = await mysql.createConnection({ uri: this.url.replace(/^mariadb:/, 'mysql:'), dateStrings: true, supportBigNumbers: true, decimalNumbers: true, charset: 'utf8mb4' })
      connection.on('error', () => undefined)
      await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED')
      this.connection = connection
    } catch (error) {
      throw new SqlConnectError(`cannot connect to MySQL/MariaDB at ${this.label}: ${(error as Error).message}`, { cause: error })
    }
  }

  async close(): Promise<void> {
    const connection = this.connection
    this.connection = null
    await connection?.end().catch(() => undefined)
  }

  private get conn(): mysql.Connection {
    if (this.connection === null) throw new SqlConnectError(`MySQL/MariaDB at ${this.label} is not connected`)
    return this.connection
  }

  private async query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
    const [rows] = await this.conn.query(sql, params)
    return rows as R[]
  }

  async describeTable(table: string): Promise<SqlColumnInfo[] | null> {
    const rows = await this.query<{ name: string; type: string; pk: string }>(
      `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLUMN_KEY AS pk FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [table],
    )
    if (rows.length === 0) return null
    return rows.map((r) => ({ name: r.name, type: String(r.type), primaryKey: r.pk === 'PRI' }))
  }

  async createTable(table: string, columns: ReadonlyArray<{ name: string; sqlType: string }>, primaryKey: string): Promise<void> {
    const defs = columns.map((c) => `${q(c.name)} ${c.sqlType}${c.name === primaryKey ? ' NOT NULL PRIMARY KEY' : ''}`)
    await this.query(`CREATE TABLE IF NOT EXISTS ${q(table)} (${defs.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
  }

  async addColumn(table: string, column: string, sqlType: string): Promise<void> {
    await this.query(`ALTER TABLE ${q(table)} ADD COLUMN IF NOT EXISTS ${q(column)} ${sqlType}`)
  }

  async installBase(): Promise<string> {
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${CAPTURE_TABLE} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, tbl VARCHAR(64) NOT NULL, op CHAR(1) NOT NULL, pk VARCHAR(512) NOT NULL, data LONGTEXT NOT NULL, ` +
        `at DOUBLE NOT NULL DEFAULT (UNIX_TIMESTAMP(NOW(3)) * 1000), KEY ${CAPTURE_TABLE}_tbl (tbl, pk)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    )
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${DEAD_LETTER_TABLE} (tbl VARCHAR(64) NOT NULL, pk VARCHAR(512) NOT NULL, direction VARCHAR(16) NOT NULL, reason TEXT NOT NULL, data LONGTEXT, attempts INT NOT NULL, ` +
        `first_at DOUBLE NOT NULL, next_at DOUBLE NOT NULL, PRIMARY KEY (tbl, pk, direction)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    )
    await this.query(`CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (k VARCHAR(64) NOT NULL PRIMARY KEY, v TEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
    await this.query(`INSERT IGNORE INTO ${STATE_TABLE} (k, v) VALUES ('epoch', ?)`, [randomUUID()])
    return (await this.query<{ v: string }>(`SELECT v FROM ${STATE_TABLE} WHERE k = 'epoch'`))[0]!.v
  }

  private triggerNames(spec: MirrorSpec): [string, string, string] {
    return [`shoal_${spec.sqlTable}_i`, `shoal_${spec.sqlTable}_u`, `shoal_${spec.sqlTable}_d`]
  }

  async hasCapture(spec: MirrorSpec): Promise<boolean> {
    const names = this.triggerNames(spec)
    const rows = await this.query<{ n: number }>(`SELECT COUNT(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN (?)`, [names])
    return Number(rows[0]!.n) === names.length
  }

  async installCapture(spec: MirrorSpec, counters: readonly string[], snapshot: readonly string[] | 'all' | null): Promise<void> {
    const t = q(spec.sqlTable)
    const pk = q(spec.primaryKey)
    const tbl = lit(spec.sqlTable)
    const all = spec.columns.map((c) => c.name)
    const insert = `INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data)`
    const [ti, tu, td] = this.triggerNames(spec)
    const changes = all
      .filter((c) => c !== spec.primaryKey)
      .map((c) => {
        const v = counters.includes(c) ? `COALESCE(NEW.${q(c)}, 0) - COALESCE(OLD.${q(c)}, 0)` : `NEW.${q(c)}`
        return `IF NOT (NEW.${q(c)} <=> OLD.${q(c)}) THEN SET d = JSON_SET(d, ${lit(`$.${c}`)}, ${v}); END IF;`
      })
    for (const name of [ti, tu, td]) await this.query(`DROP TRIGGER IF EXISTS ${q(name)}`)
    await this.query(`CREATE TRIGGER ${q(ti)} AFTER INSERT ON ${t} FOR EACH ROW BEGIN IF @shoal_applying IS NULL THEN ${insert} VALUES (${tbl}, 'I', NEW.${pk}, ${rowJson('NEW.', all)}); END IF; END`)
    await this.query(
      `CREATE TRIGGER ${q(tu)} AFTER UPDATE ON ${t} FOR EACH ROW BEGIN DECLARE d LONGTEXT DEFAULT '{}'; IF @shoal_applying IS NULL THEN ` +
        `IF NOT (NEW.${pk} <=> OLD.${pk}) THEN ${insert} VALUES (${tbl}, 'D', OLD.${pk}, '{}'); ${insert} VALUES (${tbl}, 'I', NEW.${pk}, ${rowJson('NEW.', all)}); ` +
        `ELSE ${changes.join(' ')} IF d <> '{}' THEN ${insert} VALUES (${tbl}, 'U', NEW.${pk}, d); END IF; END IF; END IF; END`,
    )
    await this.query(`CREATE TRIGGER ${q(td)} AFTER DELETE ON ${t} FOR EACH ROW BEGIN IF @shoal_applying IS NULL THEN ${insert} VALUES (${tbl}, 'D', OLD.${pk}, '{}'); END IF; END`)
    if (snapshot === null || (snapshot !== 'all' && snapshot.length === 0)) return
    const columns = snapshot === 'all' ? all : [spec.primaryKey, ...snapshot]
    const where = snapshot === 'all' ? '' : ` WHERE ${snapshot.map((c) => `${q(c)} IS NOT NULL`).join(' OR ')}`
    await this.query(`LOCK TABLES ${t} READ, ${CAPTURE_TABLE} WRITE`)
    try {
      await this.query(`${insert} SELECT ${tbl}, ${snapshot === 'all' ? "'S'" : "'C'"}, ${pk}, ${rowJson('', columns)} FROM ${t}${where} ORDER BY ${pk}`)
    } finally {
      await this.query('UNLOCK TABLES')
    }
  }

  async dropCapture(spec: MirrorSpec): Promise<void> {
    for (const name of this.triggerNames(spec)) await this.query(`DROP TRIGGER IF EXISTS ${q(name)}`)
  }

  async readCaptured(limit: number): Promise<CapturedChange[]> {
    const rows = await this.query<{ id: number | string; tbl: string; op: string; pk: string; data: string; at: number }>(`SELECT id, tbl, op, pk, data, at FROM ${CAPTURE_TABLE} ORDER BY id LIMIT ?`, [limit])
    return rows.map((r) => ({ id: Number(r.id), table: r.tbl, op: r.op as CaptureOp, pk: String(r.pk), data: parse(r.data), at: Number(r.at) }))
  }

  async deleteCaptured(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return
    await this.query(`DELETE FROM ${CAPTURE_TABLE} WHERE id IN (?)`, [ids])
  }

  async pending(): Promise<PendingSummary[]> {
    const rows = await this.query<{ tbl: string; n: number; oldest: number | null }>(`SELECT tbl, COUNT(*) AS n, MIN(at) AS oldest FROM ${CAPTURE_TABLE} GROUP BY tbl`)
    return rows.map((r) => ({ table: r.tbl, count: Number(r.n), oldestAt: r.oldest === null ? null : Number(r.oldest) }))
  }

  async writeTx<T>(fn: (tx: SqlWriteTx) => Promise<T>): Promise<T> {
    const conn = this.conn
    await conn.query('SET @shoal_applying = 1')
    try {
      await conn.query('START TRANSACTION')
      try {
        const result = await fn(this.tx)
        await conn.query('COMMIT')
        return result
      } catch (error) {
        await conn.query('ROLLBACK').catch(() => undefined)
        throw error
      }
    } finally {
      await conn.query('SET @shoal_applying = NULL').catch(() => undefined)
    }
  }

  private readonly tx: SqlWriteTx = {
    lockRows: async (spec, keys) => {
      if (keys.length === 0) return []
      const columns = spec.columns.map((c) => c.name)
      const rows = await this.query<{ r: string }>(`SELECT ${rowJson('', columns)} AS r FROM ${q(spec.sqlTable)} WHERE ${q(spec.primaryKey)} IN (?) FOR UPDATE`, [keys])
      return rows.map((row) => parse(row.r))
    },
    pendingKeys: async (spec) => {
      const rows = await this.query<{ pk: string }>(`SELECT DISTINCT pk FROM ${CAPTURE_TABLE} WHERE tbl = ?`, [spec.sqlTable])
      return new Set(rows.map((r) => String(r.pk)))
    },
    upsert: async (spec, rows) => {
      if (rows.length === 0) return
      const columns = spec.columns.map((c) => c.name)
      const set = columns.filter((c) => c !== spec.primaryKey).map((c) => `${q(c)} = VALUES(${q(c)})`)
      await this.query(
        `INSERT INTO ${q(spec.sqlTable)} (${columns.map(q).join(', ')}) VALUES ? ` +
          (set.length === 0 ? `ON DUPLICATE KEY UPDATE ${q(spec.primaryKey)} = ${q(spec.primaryKey)}` : `ON DUPLICATE KEY UPDATE ${set.join(', ')}`),
        [rows.map((row) => columns.map((c) => row[c] ?? null))],
      )
    },
    delete: async (spec, keys) => {
      if (keys.length === 0) return
      await this.query(`DELETE FROM ${q(spec.sqlTable)} WHERE ${q(spec.primaryKey)} IN (?)`, [keys])
    },
  }

  async readRows(spec: MirrorSpec, after: unknown, limit: number): Promise<Array<Record<string, unknown>>> {
    const columns = spec.columns.map((c) => c.name)
    const pk = q(spec.primaryKey)
    const rows =
      after === null
        ? await this.query<{ r: string }>(`SELECT ${rowJson('', columns)} AS r FROM ${q(spec.sqlTable)} ORDER BY ${pk} LIMIT ?`, [limit])
        : await this.query<{ r: string }>(`SELECT ${rowJson('', columns)} AS r FROM ${q(spec.sqlTable)} WHERE ${pk} > ? ORDER BY ${pk} LIMIT ?`, [after, limit])
    return rows.map((row) => parse(row.r))
  }

  async putDeadLetter(d: DeadLetter): Promise<void> {
    await this.query(
      `INSERT INTO ${DEAD_LETTER_TABLE} (tbl, pk, direction, reason, data, attempts, first_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ` +
        `ON DUPLICATE KEY UPDATE reason = VALUES(reason), data = VALUES(data), attempts = VALUES(attempts), next_at = VALUES(next_at)`,
      [d.table, d.pk, d.direction, d.reason, d.data, d.attempts, d.firstAt, d.nextAt],
    )
  }

  async deleteDeadLetter(table: string, pk: string, direction: DeadLetterDirection): Promise<void> {
    await this.query(`DELETE FROM ${DEAD_LETTER_TABLE} WHERE tbl = ? AND pk = ? AND direction = ?`, [table, pk, direction])
  }

  async deadLetters(): Promise<DeadLetter[]> {
    const rows = await this.query<{ tbl: string; pk: string; direction: DeadLetterDirection; reason: string; data: string | null; attempts: number; first_at: number; next_at: number }>(
      `SELECT tbl, pk, direction, reason, data, attempts, first_at, next_at FROM ${DEAD_LETTER_TABLE} ORDER BY first_at`,
    )
    return rows.map((r) => ({ table: r.tbl, pk: r.pk, direction: r.direction, reason: r.reason, data: r.data, attempts: Number(r.attempts), firstAt: Number(r.first_at), nextAt: Number(r.next_at) }))
  }

  watch(): () => void {
    return () => undefined
  }
}
