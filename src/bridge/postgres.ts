import { randomUUID } from 'node:crypto'
import pg from 'pg'
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
 * PostgreSQL through node-pg.
 *
 * - Capture: one generic trigger function, attached to each mirrored table with the key column
 *   and the counter columns as arguments. It renders rows with to_jsonb, so a column added later
 *   is captured at once (no trigger to regenerate), and only keeps the columns whose value changed.
 *   Triggers rather than logical decoding: logical decoding needs wal_level=logical (a server
 *   restart and superuser on most installations) and a replication slot that retains WAL while
 *   the peer is down; triggers work on any installation, capture in the committing transaction,
 *   and hold exactly what is pending in a table the operator can read.
 * - Echo suppression: the bridge's transactions set `shoal.applying` with set_config(…, true),
 *   which lasts until that transaction ends; the trigger returns at once when it reads 'on'.
 * - Wake-ups: the trigger calls pg_notify('shoal_capture') (PostgreSQL folds repeats within a
 *   transaction into one); the bridge LISTENs on a second connection.
 */

export const NOTIFY_CHANNEL = 'shoal_capture'
/** PostgreSQL's limit on bind parameters in one statement. */
const MAX_PARAMS = 65_535

function q(name: string): string {
  return `"${name}"`
}

function lit(text: string): string {
  return `'${text.replace(/'/g, "''")}'`
}

const CAPTURE_FUNCTION = `
CREATE OR REPLACE FUNCTION shoal_capture_row() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  pkcol text := TG_ARGV[0];
  n jsonb;
  o jsonb;
  d jsonb;
  c text;
  i int;
BEGIN
  IF coalesce(current_setting('shoal.applying', true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    o := to_jsonb(OLD);
    INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) VALUES (TG_TABLE_NAME, 'D', o->>pkcol, '{}');
  ELSIF TG_OP = 'INSERT' THEN
    n := to_jsonb(NEW);
    INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) VALUES (TG_TABLE_NAME, 'I', n->>pkcol, n);
  ELSE
    n := to_jsonb(NEW);
    o := to_jsonb(OLD);
    IF (n->pkcol) IS DISTINCT FROM (o->pkcol) THEN
      INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) VALUES (TG_TABLE_NAME, 'D', o->>pkcol, '{}');
      INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) VALUES (TG_TABLE_NAME, 'I', n->>pkcol, n);
    ELSE
      SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) INTO d FROM jsonb_each(n) e WHERE e.value IS DISTINCT FROM (o->e.key);
      IF d = '{}'::jsonb THEN
        RETURN NULL;
      END IF;
      FOR i IN 1 .. TG_NARGS - 1 LOOP
        c := TG_ARGV[i];
        IF d ? c THEN
          d := jsonb_set(d, ARRAY[c], to_jsonb(coalesce((n->>c)::numeric, 0) - coalesce((o->>c)::numeric, 0)));
        END IF;
      END LOOP;
      INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) VALUES (TG_TABLE_NAME, 'U', n->>pkcol, d);
    END IF;
  END IF;
  PERFORM pg_notify('${NOTIFY_CHANNEL}', '');
  RETURN NULL;
END
$fn$`

/** A connection URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@')
}

export class PostgresDialect implements SqlDialect {
  readonly name = 'postgres' as const
  readonly jsonAsText = false
  pushes = false
  private client: pg.Client | null = null

  constructor(readonly url: string) {}

  get label(): string {
    return redactUrl(this.url)
  }

  async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url })
    client.on('error', () => undefined)
    try {
      await client.connect()
    } catch (error) {
      await client.end().catch(() => undefined)
      throw new SqlConnectError(`cannot connect to PostgreSQL at ${this.label}: ${(error as Error).message}`, { cause: error })
    }
    this.client = client
  }

  async close(): Promise<void> {
    const client = this.client
    this.client = null
    await client?.end().catch(() => undefined)
  }

  private get conn(): pg.Client {
    if (this.client === null) throw new SqlConnectError(`PostgreSQL at ${this.label} is not connected`)
    return this.client
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.conn.query<R>(sql, params)).rows
  }

  async describeTable(table: string): Promise<SqlColumnInfo[] | null> {
    const rows = await this.query<{ name: string; type: string; pk: boolean }>(
      `SELECT a.attname AS name, t.typname AS type, coalesce(a.attnum = ANY(i.indkey), false) AS pk
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace ns ON ns.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
       WHERE c.relname = $1 AND ns.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY a.attnum`,
      [table],
    )
    if (rows.length === 0) return null
    return rows.map((r) => ({ name: r.name, type: r.type, primaryKey: r.pk }))
  }

  async createTable(table: string, columns: ReadonlyArray<{ name: string; sqlType: string }>, primaryKey: string): Promise<void> {
    const defs = columns.map((c) => `${q(c.name)} ${c.sqlType}${c.name === primaryKey ? ' NOT NULL PRIMARY KEY' : ''}`)
    await this.query(`CREATE TABLE IF NOT EXISTS ${q(table)} (${defs.join(', ')})`)
  }

  async addColumn(table: string, column: string, sqlType: string): Promise<void> {
    await this.query(`ALTER TABLE ${q(table)} ADD COLUMN IF NOT EXISTS ${q(column)} ${sqlType}`)
  }

  async installBase(): Promise<string> {
    await this.query(`CREATE TABLE IF NOT EXISTS ${CAPTURE_TABLE} (id bigserial PRIMARY KEY, tbl text NOT NULL, op char(1) NOT NULL, pk text NOT NULL, data jsonb NOT NULL, at double precision NOT NULL DEFAULT (extract(epoch from clock_timestamp()) * 1000))`)
    await this.query(`CREATE INDEX IF NOT EXISTS ${CAPTURE_TABLE}_tbl ON ${CAPTURE_TABLE} (tbl, pk)`)
    await this.query(`CREATE TABLE IF NOT EXISTS ${DEAD_LETTER_TABLE} (tbl text NOT NULL, pk text NOT NULL, direction text NOT NULL, reason text NOT NULL, data text, attempts integer NOT NULL, first_at double precision NOT NULL, next_at double precision NOT NULL, PRIMARY KEY (tbl, pk, direction))`)
    await this.query(`CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (k text PRIMARY KEY, v text NOT NULL)`)
    await this.query(CAPTURE_FUNCTION)
    await this.query(`INSERT INTO ${STATE_TABLE} (k, v) VALUES ('epoch', $1) ON CONFLICT (k) DO NOTHING`, [randomUUID()])
    return (await this.query<{ v: string }>(`SELECT v FROM ${STATE_TABLE} WHERE k = 'epoch'`))[0]!.v
  }

  async hasCapture(spec: MirrorSpec): Promise<boolean> {
    const rows = await this.query(`SELECT 1 FROM pg_trigger WHERE tgname = 'shoal_capture' AND tgrelid = to_regclass($1)`, [q(spec.sqlTable)])
    return rows.length > 0
  }

  async installCapture(spec: MirrorSpec, counters: readonly string[], snapshot: readonly string[] | 'all' | null): Promise<void> {
    const t = q(spec.sqlTable)
    const args = [spec.primaryKey, ...counters].map(lit).join(', ')
    const client = this.conn
    await client.query('BEGIN')
    try {
      // Waits for writers in flight and keeps new ones out until COMMIT: the snapshot and the
      // trigger see the same table, so no change is captured twice or missed.
      await client.query(`LOCK TABLE ${t} IN SHARE ROW EXCLUSIVE MODE`)
      await client.query(`DROP TRIGGER IF EXISTS shoal_capture ON ${t}`)
      await client.query(`CREATE TRIGGER shoal_capture AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION shoal_capture_row(${args})`)
      const pk = `x.${q(spec.primaryKey)}`
      if (snapshot === 'all') {
        await client.query(`INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) SELECT $1, 'S', to_jsonb(x)->>$2, to_jsonb(x) FROM ${t} x ORDER BY ${pk}`, [spec.sqlTable, spec.primaryKey])
      } else if (snapshot !== null && snapshot.length > 0) {
        const cols = [spec.primaryKey, ...snapshot]
        await client.query(
          `INSERT INTO ${CAPTURE_TABLE} (tbl, op, pk, data) SELECT $1, 'C', to_jsonb(x)->>$2, jsonb_build_object(${cols.map((c) => `${lit(c)}, x.${q(c)}`).join(', ')}) ` +
            `FROM ${t} x WHERE ${snapshot.map((c) => `x.${q(c)} IS NOT NULL`).join(' OR ')} ORDER BY ${pk}`,
          [spec.sqlTable, spec.primaryKey],
        )
      }
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw error
    }
  }

  async dropCapture(spec: MirrorSpec): Promise<void> {
    await this.query(`DROP TRIGGER IF EXISTS shoal_capture ON ${q(spec.sqlTable)}`)
  }

  async readCaptured(limit: number): Promise<CapturedChange[]> {
    const rows = await this.query<{ id: string; tbl: string; op: string; pk: string; data: Record<string, unknown>; at: number }>(
      `SELECT id, tbl, op, pk, data, at FROM ${CAPTURE_TABLE} ORDER BY id LIMIT $1`,
      [limit],
    )
    return rows.map((r) => ({ id: Number(r.id), table: r.tbl, op: r.op as CaptureOp, pk: r.pk, data: r.data, at: r.at }))
  }

  async deleteCaptured(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return
    await this.query(`DELETE FROM ${CAPTURE_TABLE} WHERE id = ANY($1::bigint[])`, [ids])
  }

  async pending(): Promise<PendingSummary[]> {
    const rows = await this.query<{ tbl: string; n: string; oldest: number | null }>(`SELECT tbl, count(*) AS n, min(at) AS oldest FROM ${CAPTURE_TABLE} GROUP BY tbl`)
    return rows.map((r) => ({ table: r.tbl, count: Number(r.n), oldestAt: r.oldest }))
  }

  async writeTx<T>(fn: (tx: SqlWriteTx) => Promise<T>): Promise<T> {
    const client = this.conn
    await client.query('BEGIN')
    try {
      await client.query(`SELECT set_config('shoal.applying', 'on', true)`)
      const result = await fn(this.tx)
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw error
    }
  }

  private readonly tx: SqlWriteTx = {
    lockRows: async (spec, keys) => {
      if (keys.length === 0) return []
      const rows = await this.query<{ r: Record<string, unknown> }>(`SELECT to_jsonb(x) AS r FROM ${q(spec.sqlTable)} x WHERE x.${q(spec.primaryKey)} = ANY($1) FOR UPDATE`, [keys])
      return rows.map((row) => row.r)
    },
    pendingKeys: async (spec) => {
      const rows = await this.query<{ pk: string }>(`SELECT DISTINCT pk FROM ${CAPTURE_TABLE} WHERE tbl = $1`, [spec.sqlTable])
      return new Set(rows.map((r) => r.pk))
    },
    upsert: async (spec, rows) => {
      const columns = spec.columns.map((c) => c.name)
      const set = columns.filter((c) => c !== spec.primaryKey).map((c) => `${q(c)} = EXCLUDED.${q(c)}`)
      const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length))
      for (let start = 0; start < rows.length; start += perStatement) {
        const chunk = rows.slice(start, start + perStatement)
        const params: unknown[] = []
        const tuples = chunk.map((row) => `(${columns.map((c) => `$${params.push(row[c] ?? null)}`).join(', ')})`)
        await this.query(
          `INSERT INTO ${q(spec.sqlTable)} (${columns.map(q).join(', ')}) VALUES ${tuples.join(', ')} ` +
            (set.length === 0 ? `ON CONFLICT (${q(spec.primaryKey)}) DO NOTHING` : `ON CONFLICT (${q(spec.primaryKey)}) DO UPDATE SET ${set.join(', ')}`),
          params,
        )
      }
    },
    delete: async (spec, keys) => {
      if (keys.length === 0) return
      await this.query(`DELETE FROM ${q(spec.sqlTable)} WHERE ${q(spec.primaryKey)} = ANY($1)`, [keys])
    },
  }

  async readRows(spec: MirrorSpec, after: unknown, limit: number): Promise<Array<Record<string, unknown>>> {
    const t = q(spec.sqlTable)
    const pk = `x.${q(spec.primaryKey)}`
    const rows =
      after === null
        ? await this.query<{ r: Record<string, unknown> }>(`SELECT to_jsonb(x) AS r FROM ${t} x ORDER BY ${pk} LIMIT $1`, [limit])
        : await this.query<{ r: Record<string, unknown> }>(`SELECT to_jsonb(x) AS r FROM ${t} x WHERE ${pk} > $1 ORDER BY ${pk} LIMIT $2`, [after, limit])
    return rows.map((row) => row.r)
  }

  async putDeadLetter(d: DeadLetter): Promise<void> {
    await this.query(
      `INSERT INTO ${DEAD_LETTER_TABLE} (tbl, pk, direction, reason, data, attempts, first_at, next_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ` +
        `ON CONFLICT (tbl, pk, direction) DO UPDATE SET reason = EXCLUDED.reason, data = EXCLUDED.data, attempts = EXCLUDED.attempts, next_at = EXCLUDED.next_at`,
      [d.table, d.pk, d.direction, d.reason, d.data, d.attempts, d.firstAt, d.nextAt],
    )
  }

  async deleteDeadLetter(table: string, pk: string, direction: DeadLetterDirection): Promise<void> {
    await this.query(`DELETE FROM ${DEAD_LETTER_TABLE} WHERE tbl = $1 AND pk = $2 AND direction = $3`, [table, pk, direction])
  }

  async deadLetters(): Promise<DeadLetter[]> {
    const rows = await this.query<{ tbl: string; pk: string; direction: DeadLetterDirection; reason: string; data: string | null; attempts: number; first_at: number; next_at: number }>(
      `SELECT tbl, pk, direction, reason, data, attempts, first_at, next_at FROM ${DEAD_LETTER_TABLE} ORDER BY first_at`,
    )
    return rows.map((r) => ({ table: r.tbl, pk: r.pk, direction: r.direction, reason: r.reason, data: r.data, attempts: r.attempts, firstAt: r.first_at, nextAt: r.next_at }))
  }

  watch(wake: () => void): () => void {
    const listener = new pg.Client({ connectionString: this.url })
    let stopped = false
    listener.on('notification', () => wake())
    listener.on('error', () => {
      // The bridge keeps polling; a lost LISTEN connection only costs latency.
      this.pushes = false
    })
    listener
      .connect()
      .then(() => listener.query(`LISTEN ${NOTIFY_CHANNEL}`))
      .then(() => {
        if (!stopped) this.pushes = true
      })
      .catch(() => (this.pushes = false))
    return () => {
      stopped = true
      this.pushes = false
      void listener.end().catch(() => undefined)
    }
  }
}
