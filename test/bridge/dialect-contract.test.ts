import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { dialectFor, SqlBridge } from '../../src/bridge/bridge.js'
import { parseBridgeConfig } from '../../src/bridge/config.js'
import { MemoryLogger } from '../../src/log.js'
import { Shoal } from '../../src/shoal.js'
import type { DialectName } from '../../src/bridge/types.js'
import { tempDir } from '../helpers/tempdir.js'
import { createDatabase, DIALECTS, eventually, unavailable, type SqlClient, type TestDatabase } from './databases.js'

/*
 * The contract every SQL dialect passes (automerge-repo's adapter suites are the model): the same
 * bridge, the same scenarios, against a real SQLite file, PostgreSQL and MariaDB. SQL is written
 * by a plain client connection — as a till application or psql would — never through the bridge.
 */

const DDL: Record<DialectName, string> = {
  sqlite: `CREATE TABLE stock (id TEXT PRIMARY KEY, store TEXT, name TEXT, price REAL CHECK (price >= 0), qty INTEGER NOT NULL DEFAULT 0, active BOOLEAN, tags JSON)`,
  postgres: `CREATE TABLE stock (id text PRIMARY KEY, store text, name text, price double precision CHECK (price >= 0), qty integer NOT NULL DEFAULT 0, active boolean, tags jsonb)`,
  mysql: `CREATE TABLE stock (id VARCHAR(64) PRIMARY KEY, store VARCHAR(16), name VARCHAR(200), price DOUBLE CHECK (price >= 0), qty INT NOT NULL DEFAULT 0, active BOOLEAN, tags JSON)`,
}

const ADD_NOTE: Record<DialectName, string> = {
  sqlite: `ALTER TABLE stock ADD COLUMN note TEXT`,
  postgres: `ALTER TABLE stock ADD COLUMN note text`,
  mysql: `ALTER TABLE stock ADD COLUMN note VARCHAR(200)`,
}

interface Harness {
  database: TestDatabase
  sql: SqlClient
  dir: string
  db: Shoal
  bridge: SqlBridge | null
  logger: MemoryLogger
}

const open: Harness[] = []

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.bridge?.stop().catch(() => undefined)
    if (h.db.isOpen) await h.db.close()
    await h.sql.close().catch(() => undefined)
    await h.database.drop()
  }
})

function bridgeConfig(database: string, extra: Record<string, unknown> = {}) {
  return parseBridgeConfig({ database, tables: [{ table: 'stock', counters: ['qty'], json: ['tags'] }], pollMs: 50, retryMinMs: 50, retryMaxMs: 200, ...extra }, 'test')
}

async function harness(dialect: DialectName, options: { ddl?: boolean; start?: boolean } = {}): Promise<Harness> {
  const database = await createDatabase(dialect)
  const sql = await database.client()
  if (options.ddl !== false) await sql.run(DDL[dialect])
  const dir = await tempDir()
  const db = await Shoal.open({ dir })
  const h: Harness = { database, sql, dir, db, bridge: null, logger: new MemoryLogger() }
  open.push(h)
  if (options.start !== false) await startBridge(h)
  return h
}

async function startBridge(h: Harness): Promise<SqlBridge> {
  h.bridge = await SqlBridge.start({ db: h.db, config: bridgeConfig(h.database.database), logger: h.logger })
  return h.bridge
}

async function stopBridge(h: Harness): Promise<void> {
  await h.bridge?.stop()
  h.bridge = null
}

async function sqlRow(h: Harness, id: string): Promise<Record<string, unknown> | null> {
  const rows = await h.sql.rows(`SELECT id, store, name, price, qty, active FROM stock WHERE id = ?`, [id])
  if (rows.length === 0) return null
  const r = rows[0]!
  return { ...r, price: r.price === null ? null : Number(r.price), qty: Number(r.qty), active: r.active === null ? null : Boolean(r.active) }
}

async function captureRows(h: Harness): Promise<Array<{ op: string; pk: string; data: Record<string, unknown> }>> {
  const rows = await h.sql.rows<{ op: string; pk: string; data: unknown }>(`SELECT op, pk, data FROM shoal_capture ORDER BY id`)
  return rows.map((r) => ({ op: r.op.trim(), pk: String(r.pk), data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown> }))
}

describe.each(DIALECTS)('SQL bridge contract: %s', (dialect) => {
  let skip: string | null = null
  beforeAll(async () => {
    skip = await unavailable(dialect)
  })

  it('captures INSERT, UPDATE and DELETE from a plain SQL client, in commit order', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    const stock = h.db.table('stock')
    await h.sql.run(`INSERT INTO stock (id, store, name, price, qty, active, tags) VALUES ('A1', '1', 'Umbrella', 12.5, 10, TRUE, '{"color":"red"}')`)
    await eventually(async () => expect(await stock.get('A1')).toEqual({ id: 'A1', store: '1', name: 'Umbrella', price: 12.5, qty: 10, active: true, tags: { color: 'red' } }))
    await h.sql.run(`UPDATE stock SET price = 13.75 WHERE id = 'A1'`)
    await h.sql.run(`UPDATE stock SET name = 'Big umbrella' WHERE id = 'A1'`)
    await eventually(async () => expect(await stock.get('A1')).toMatchObject({ name: 'Big umbrella', price: 13.75 }))
    await h.sql.run(`DELETE FROM stock WHERE id = 'A1'`)
    await eventually(async () => expect(await stock.get('A1')).toBeNull())
    // Insert after delete: a new life of the row.
    await h.sql.run(`INSERT INTO stock (id, store, name, qty) VALUES ('A1', '1', 'Again', 1)`)
    await eventually(async () => expect(await stock.get('A1')).toEqual({ id: 'A1', store: '1', name: 'Again', price: null, qty: 1, active: null, tags: null }))
    await eventually(() => expect(h.bridge!.status().tables[0]).toMatchObject({ table: 'stock', captured: 5, pending: 0, deadLetters: 0 }))
  })

  it('captures only the columns that changed, so concurrent changes to other columns survive', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    await h.sql.run(`INSERT INTO stock (id, store, name, price, qty) VALUES ('B1', '1', 'Kettle', 20, 3)`)
    await eventually(async () => expect(await h.db.table('stock').get('B1')).not.toBeNull())
    await stopBridge(h)
    // While the peer is stopped: the till renames, the mesh (here: a local write) reprices.
    await h.sql.run(`UPDATE stock SET name = 'Steel kettle' WHERE id = 'B1'`)
    await h.sql.run(`UPDATE stock SET name = name WHERE id = 'B1'`)
    expect(await captureRows(h)).toEqual([{ op: 'U', pk: 'B1', data: { name: 'Steel kettle' } }])
    await h.db.table('stock').update('B1', { price: 25 })
    await startBridge(h)
    await eventually(async () => expect(await h.db.table('stock').get('B1')).toMatchObject({ name: 'Steel kettle', price: 25, qty: 3 }))
    await eventually(async () => expect(await sqlRow(h, 'B1')).toMatchObject({ name: 'Steel kettle', price: 25, qty: 3 }))
  })

  it('captures a counter as an increment, so concurrent sales add up', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    await h.sql.run(`INSERT INTO stock (id, store, name, qty) VALUES ('C1', '1', 'Cup', 10)`)
    await eventually(async () => expect(await h.db.table('stock').get('C1')).toMatchObject({ qty: 10 }))
    await stopBridge(h)
    await h.sql.run(`UPDATE stock SET qty = qty - 2 WHERE id = 'C1'`)
    await h.sql.run(`UPDATE stock SET qty = qty - 1 WHERE id = 'C1'`)
    expect((await captureRows(h)).map((c) => c.data)).toEqual([{ qty: -2 }, { qty: -1 }])
    // Meanwhile 5 were sold elsewhere (arrives from the mesh).
    await h.db.table('stock').increment('C1', 'qty', -5)
    await startBridge(h)
    await eventually(async () => expect(await h.db.table('stock').get('C1')).toMatchObject({ qty: 2 }))
    await eventually(async () => expect(await sqlRow(h, 'C1')).toMatchObject({ qty: 2 }))
  })

  it('writes Shoal changes into SQL without capturing them again (no echo)', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    const stock = h.db.table('stock')
    await stock.put('D1', { store: '2', name: 'Lamp', price: 30, qty: 4, active: false, tags: ['x', { y: 1 }] })
    await stock.increment('D1', 'qty', 3)
    await eventually(async () => expect(await sqlRow(h, 'D1')).toEqual({ id: 'D1', store: '2', name: 'Lamp', price: 30, qty: 7, active: false }))
    await stock.delete('D1')
    await eventually(async () => expect(await sqlRow(h, 'D1')).toBeNull())
    await h.bridge!.settled()
    expect(await captureRows(h)).toEqual([])
    expect(h.bridge!.status().tables[0]).toMatchObject({ captured: 0, writtenBack: 2 })
    expect(await stock.get('D1')).toBeNull()
  })

  it('write-back is idempotent: a repeated delivery writes nothing', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    const other = await Shoal.open({ dir: await tempDir() })
    try {
      await other.defineTable(h.db.schema('stock'))
      const deltas: Array<{ partition: string; key: string; delta: Uint8Array }> = []
      other.subscribe((e) => {
        if (e.table === 'stock') deltas.push({ partition: e.partition, key: e.key, delta: e.delta })
      })
      await other.table('stock').put('E1', { store: '1', name: 'Fan', price: 40, qty: 2 })
      for (let i = 0; i < 3; i++) for (const d of deltas) await h.db.applyRemoteDelta('stock', d.partition, d.key, d.delta, 'peer-x')
      await eventually(async () => expect(await sqlRow(h, 'E1')).toMatchObject({ name: 'Fan', qty: 2 }))
      await h.bridge!.settled()
      expect(h.bridge!.status().tables[0]!.writtenBack).toBe(1)
      // The same change once more, and a row already equal to SQL: still one write.
      for (const d of deltas) await h.db.applyRemoteDelta('stock', d.partition, d.key, d.delta, 'peer-x')
      await h.db.table('stock').update('E1', { name: 'Fan' })
      await h.bridge!.settled()
      expect(h.bridge!.status().tables[0]!.writtenBack).toBe(1)
      expect(await captureRows(h)).toEqual([])
    } finally {
      await other.close()
    }
  })

  it('a write the database refuses goes to the dead-letter table, is retried, and blocks nothing', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    const stock = h.db.table('stock')
    await stock.put('F1', { store: '1', name: 'Bad price', price: -1, qty: 1 })
    await stock.put('F2', { store: '1', name: 'Good', price: 1, qty: 1 })
    await eventually(async () => expect(await sqlRow(h, 'F2')).toMatchObject({ name: 'Good' }))
    const letters = await eventually(async () => {
      const rows = await h.sql.rows<{ tbl: string; pk: string; direction: string; reason: string; attempts: number }>(`SELECT tbl, pk, direction, reason, attempts FROM shoal_dead_letter`)
      expect(rows).toHaveLength(1)
      return rows
    })
    expect(letters[0]).toMatchObject({ tbl: 'stock', pk: 'F1', direction: 'write' })
    expect(letters[0]!.reason.toLowerCase()).toMatch(/check|constraint/)
    expect(await sqlRow(h, 'F1')).toBeNull()
    expect(h.bridge!.status().tables[0]!.deadLetters).toBe(1)
    expect(h.bridge!.status().deadLetters[0]).toMatchObject({ table: 'stock', key: 'F1', direction: 'write' })
    // Retried with backoff while it keeps failing…
    await eventually(async () => expect(Number((await h.sql.rows<{ attempts: number }>(`SELECT attempts FROM shoal_dead_letter`))[0]!.attempts)).toBeGreaterThanOrEqual(2))
    // …and written once the row is acceptable.
    await stock.update('F1', { price: 2 })
    await eventually(async () => expect(await sqlRow(h, 'F1')).toMatchObject({ price: 2 }))
    await eventually(async () => expect(await h.sql.rows(`SELECT * FROM shoal_dead_letter`)).toEqual([]))
    expect(h.bridge!.status().tables[0]!.deadLetters).toBe(0)
  })

  it('initial load: an attached database with rows is imported once; an empty one is filled from Shoal', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect, { start: false })
    for (let i = 0; i < 250; i++) await h.sql.run(`INSERT INTO stock (id, store, name, qty) VALUES (?, '1', ?, ?)`, [`L${String(i).padStart(3, '0')}`, `item ${i}`, i])
    const progress: Array<{ done: number; total: number }> = []
    h.bridge = await SqlBridge.start({ db: h.db, config: bridgeConfig(h.database.database, { batchRows: 100 }), logger: h.logger, onProgress: (p) => progress.push(p) })
    await eventually(async () => expect((await h.db.status()).tables.find((t) => t.name === 'stock')?.rows).toBe(250))
    expect(await h.db.table('stock').get('L007')).toMatchObject({ name: 'item 7', qty: 7 })
    expect(progress.length).toBeGreaterThan(0)
    expect(progress[progress.length - 1]).toMatchObject({ total: 250 })
    await h.bridge.settled()
    expect(h.bridge.status().tables[0]!.writtenBack).toBe(0)
    // Restarting does not import again (counters would double).
    await stopBridge(h)
    await startBridge(h)
    await h.bridge!.settled()
    expect(await h.db.table('stock').get('L100')).toMatchObject({ qty: 100 })
    expect(h.bridge!.status().tables[0]!.captured).toBe(0)

    // The other way: a Shoal store with rows, a database without the table.
    const empty = await harness(dialect, { ddl: false, start: false })
    await empty.db.defineTable({ name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', name: 'string', price: 'number', qty: 'counter', active: 'boolean', tags: 'json' } })
    for (let i = 0; i < 120; i++) await empty.db.table('stock').put(`M${i}`, { store: String(i % 3), name: `m${i}`, qty: i, tags: { i } })
    await startBridge(empty)
    await eventually(async () => expect(Number((await empty.sql.rows<{ n: number }>(`SELECT count(*) AS n FROM stock`))[0]!.n)).toBe(120))
    expect(await sqlRow(empty, 'M7')).toMatchObject({ store: '1', name: 'm7', qty: 7 })
    await empty.bridge!.settled()
    expect(await captureRows(empty)).toEqual([])
  })

  it('ADD COLUMN on either side reaches the other', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect)
    await h.sql.run(`INSERT INTO stock (id, store, name, qty) VALUES ('G1', '1', 'Chair', 1)`)
    await eventually(async () => expect(await h.db.table('stock').get('G1')).not.toBeNull())
    await h.sql.run(ADD_NOTE[dialect])
    await h.sql.run(`UPDATE stock SET note = 'by the door' WHERE id = 'G1'`)
    await eventually(async () => expect(await h.db.table('stock').get('G1')).toMatchObject({ note: 'by the door' }))
    expect(h.db.schema('stock').columns.note).toBe('string')
    // Shoal side: a column defined on another peer arrives in the schema; SQL gains it.
    await h.db.defineTable({ ...h.db.schema('stock'), columns: { ...h.db.schema('stock').columns, color: 'string' } })
    await h.db.table('stock').update('G1', { color: 'blue' })
    await eventually(async () => expect(await h.sql.rows(`SELECT color FROM stock WHERE id = 'G1'`)).toEqual([{ color: 'blue' }]))
    // Anything else is refused with a message, for that table only.
    if (dialect === 'postgres') {
      await h.sql.run(`ALTER TABLE stock DROP COLUMN active`)
      await eventually(() => expect(h.bridge!.status().tables[0]!.error).toMatch(/no longer has column 'active'.*ADD COLUMN only/))
    }
  })

  it('refuses at start a column whose type cannot map, naming table and column', async (ctx) => {
    if (skip !== null) return ctx.skip()
    const h = await harness(dialect, { ddl: false, start: false })
    const blob = dialect === 'postgres' ? 'bytea' : 'BLOB'
    await h.sql.run(`CREATE TABLE stock (id ${dialect === 'mysql' ? 'VARCHAR(20)' : 'TEXT'} PRIMARY KEY, photo ${blob})`)
    await expect(startBridge(h)).rejects.toThrow(/SQL table 'stock', column 'photo': type '(bytea|BLOB|blob)' has no Shoal column kind/)
  })
})

describe('SQL bridge: a failed deletion of applied changes', () => {
  it('never applies a captured change twice when deleting it from the capture table fails', async () => {
    const database = await createDatabase('sqlite')
    const sql = await database.client()
    await sql.run(DDL.sqlite)
    const db = await Shoal.open({ dir: await tempDir() })
    const config = bridgeConfig(database.database)
    const dialect = dialectFor(config, process.cwd())
    // The till holds the write lock when the bridge deletes the batch it just applied.
    let failures = 2
    const deleteCaptured = dialect.deleteCaptured.bind(dialect)
    dialect.deleteCaptured = async (ids) => {
      if (ids.length > 0 && failures-- > 0) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
      return deleteCaptured(ids)
    }
    const bridge = await SqlBridge.start({ db, config, dialect, logger: new MemoryLogger() })
    try {
      await sql.run(`INSERT INTO stock (id, store, name, qty) VALUES ('K1', '1', 'Key', 10)`)
      await sql.run(`UPDATE stock SET qty = qty + 5 WHERE id = 'K1'`)
      await eventually(async () => expect(await sql.rows(`SELECT id FROM shoal_capture`)).toEqual([]))
      await bridge.settled()
      expect(failures).toBeLessThan(0)
      expect(await db.table('stock').get('K1')).toMatchObject({ qty: 15 })
      expect(await sql.rows(`SELECT qty FROM stock WHERE id = 'K1'`)).toEqual([{ qty: 15 }])
    } finally {
      await bridge.stop()
      await db.close()
      await sql.close()
    }
  })
})
