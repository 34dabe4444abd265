import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  PartitionError,
  RowNotFoundError,
  SchemaConflictError,
  SchemaError,
  Shoal,
  StoreCorruptError,
  StoreOpenError,
  UnknownColumnError,
  UnknownTableError,
  ValidationError,
  type ChangeEvent,
  type EngineName,
  type TableSchema,
} from '../src/index.js'
import { tempDir } from './helpers/tempdir.js'

const ENGINES: EngineName[] = ['yjs', 'automerge', 'columns']

function stock(engine: EngineName): TableSchema {
  return {
    name: 'stock',
    primaryKey: 'sku',
    partitionBy: 'store',
    engine,
    // The columns engine has no text cells: there `notes` is a register.
    columns: { sku: 'string', store: 'string', name: 'string', price: 'number', qty: 'counter', notes: engine === 'columns' ? 'string' : 'text' },
  }
}

describe.each(ENGINES)('Shoal tables on %s', (engine) => {
  it('writes, reads, increments, edits text, deletes and scans', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      await db.defineTable(stock(engine))
      const t = db.table('stock')
      expect(await t.put('A1', { store: '7', name: 'Widget', price: 2.5, qty: 10, notes: 'blue' })).toEqual({
        sku: 'A1', store: '7', name: 'Widget', price: 2.5, qty: 10, notes: 'blue',
      })
      await t.update('A1', { price: 3 })
      await t.increment('A1', 'qty', -3)
      if (engine === 'columns') await t.update('A1', { notes: 'blue and green' })
      else await t.editText('A1', 'notes', { index: 4, insert: ' and green' })
      expect(await t.get('A1')).toEqual({ sku: 'A1', store: '7', name: 'Widget', price: 3, qty: 7, notes: 'blue and green' })
      expect(await t.get('A1', { partition: '7' })).not.toBeNull()
      expect(await t.get('A1', { partition: '8' })).toBeNull()
      expect(await t.get('nope')).toBeNull()

      for (let i = 0; i < 25; i++) await t.put(`B${String(i).padStart(2, '0')}`, { store: i % 2 === 0 ? '7' : '9', qty: i })
      const page1 = await t.scan({ partition: '7', limit: 5 })
      expect(page1.rows.map((r) => r.sku)).toEqual(['A1', 'B00', 'B02', 'B04', 'B06'])
      const page2 = await t.scan({ partition: '7', limit: 5, after: page1.next! })
      expect(page2.rows.map((r) => r.sku)).toEqual(['B08', 'B10', 'B12', 'B14', 'B16'])
      const all: string[] = []
      let after: string | undefined
      do {
        const page = await t.scan({ limit: 7, ...(after === undefined ? {} : { after }) })
        all.push(...page.rows.map((r) => `${r.store}/${r.sku}`))
        after = page.next ?? undefined
      } while (after !== undefined)
      expect(all).toHaveLength(26)
      expect(all.slice(0, 2)).toEqual(['7/A1', '7/B00'])
      expect(all[all.length - 1]).toBe('9/B23')

      expect(await t.delete('A1')).toBe(true)
      expect(await t.delete('A1')).toBe(false)
      expect(await t.get('A1')).toBeNull()
      await expect(t.update('A1', { price: 1 })).rejects.toThrow(RowNotFoundError)
      await expect(t.increment('A1', 'qty')).rejects.toThrow(RowNotFoundError)
      // Re-insert after delete starts from empty columns.
      expect(await t.put('A1', { name: 'Again' })).toEqual({ sku: 'A1', store: '7', name: 'Again', price: null, qty: 0, notes: engine === 'columns' ? null : '' })
      const status = await db.status()
      expect(status.tables[0]).toMatchObject({ name: 'stock', engine, rows: 26 })
      expect(status.tables[0]!.partitions.map((p) => [p.partition, p.rows])).toEqual([['7', 14], ['9', 12]])
    } finally {
      await db.close()
    }
  })

  it.skipIf(engine === 'columns')('moves a text edit made against an earlier read onto the current text (TextEdit base)', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      await db.defineTable(stock(engine))
      const t = db.table('stock')
      await t.put('A1', { store: '7', notes: 'apples' })
      // A field showed 'apples'; meanwhile someone put 'Fresh ' in front.
      await t.editText('A1', 'notes', { index: 0, insert: 'Fresh ' })
      expect((await t.editText('A1', 'notes', { index: 6, insert: ' ripe', base: 'apples' })).notes).toBe('Fresh apples ripe')
      // and a deletion of what the field showed removes those letters where they are now
      expect((await t.editText('A1', 'notes', { index: 0, delete: 3, base: 'apples ripe' })).notes).toBe('Fresh les ripe')
      await expect(t.editText('A1', 'notes', { index: 9, insert: 'x', base: 'short' })).rejects.toThrow(/does not fit its base text of 5 characters/)
      await expect(t.editText('A1', 'notes', { index: 0, insert: 'x', base: 7 as never })).rejects.toThrow(/'base' must be the text the edit was made against/)
    } finally {
      await db.close()
    }
  })

  it('reopens with every row and digest exactly as before', async () => {
    const dir = await tempDir()
    const db = await Shoal.open({ dir, rowCacheSize: 8 })
    await db.defineTable(stock(engine))
    const t = db.table('stock')
    await Promise.all(Array.from({ length: 200 }, (_, i) => t.put(`K${i}`, { store: String(i % 3), price: i, qty: i })))
    await t.delete('K5')
    await t.increment('K7', 'qty', 5)
    const before = await db.status()
    const rowsBefore = (await t.scan({ limit: 1000 })).rows
    const actor = db.actor
    await db.close()

    const again = await Shoal.open({ dir, rowCacheSize: 8 })
    try {
      expect(again.actor).toBe(actor)
      expect(again.tables().map((s) => s.name)).toEqual(['stock'])
      expect(await again.status()).toEqual(before)
      expect((await again.table('stock').scan({ limit: 1000 })).rows).toEqual(rowsBefore)
      expect(await again.table('stock').get('K7')).toMatchObject({ qty: 12 })
    } finally {
      await again.close()
    }
  })

  it('replicates by deltas from subscribe events: any order, duplicates, equal digests', async () => {
    const a = await Shoal.open({ dir: await tempDir() })
    const b = await Shoal.open({ dir: await tempDir() })
    try {
      const events: ChangeEvent[] = []
      a.subscribe((e) => events.push(e))
      await a.defineTable(stock(engine))
      const t = a.table('stock')
      await t.put('A1', { store: '7', qty: 1 })
      await t.increment('A1', 'qty', 4)
      await t.put('A2', { store: '8', name: 'x' })
      await t.delete('A2')
      // The catalog replicates like data: b learns the table from a's catalog events.
      const catalog = events.filter((e) => e.table === '_tables')
      const data = events.filter((e) => e.table !== '_tables')
      await expect(b.applyRemoteDelta('stock', '7', 'A1', data[0]!.delta, 'peer-a')).rejects.toThrow(UnknownTableError)
      for (const e of catalog) await b.applyRemoteDelta(e.table, e.partition, e.key, e.delta, 'peer-a')
      for (const e of [...data].reverse().concat(data)) await b.applyRemoteDelta(e.table, e.partition, e.key, e.delta, 'peer-a')
      expect(b.tables().map((s) => s.name)).toEqual(['stock'])
      expect(await b.table('stock').get('A1')).toEqual(await t.get('A1'))
      expect(await b.table('stock').get('A2')).toBeNull()
      const sa = await a.status()
      const sb = await b.status()
      expect(sb.tables).toEqual(sa.tables)
    } finally {
      await a.close()
      await b.close()
    }
  })

  // Found by the fuzzer (npm run fuzz): on Automerge a put repeating a row's values made no
  // Automerge change, yet was reported changed with an empty delta, which gossip sent on and
  // peers refused together with every other delta of its message.
  it('never reports a change or emits an event without a delta: a put repeating the values', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      await db.defineTable(stock(engine))
      const events: ChangeEvent[] = []
      db.subscribe((e) => events.push(e))
      const t = db.table('stock')
      await t.put('A1', { store: '7', name: 'x', price: 2 })
      const before = await db.status()
      const again = await t.write({ op: 'put', key: 'A1', values: { store: '7', name: 'x', price: 2 } })
      for (const e of events) expect(e.delta.length).toBeGreaterThan(0)
      if (!again.changed) {
        expect(events).toHaveLength(1)
        expect(await db.status()).toEqual(before)
      }
      if (engine === 'automerge') expect(again.changed).toBe(false)
      expect(await t.get('A1')).toMatchObject({ name: 'x', price: 2 })
      expect((await db.check()).problems).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('adds a column without rewriting rows, and refuses incompatible schema changes', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      await db.defineTable(stock(engine))
      await db.table('stock').put('A1', { store: '7', qty: 2 })
      const extended = await db.defineTable({ ...stock(engine), columns: { ...stock(engine).columns, colour: 'string' } })
      expect(extended.columns.colour).toBe('string')
      expect(await db.table('stock').get('A1')).toMatchObject({ qty: 2, colour: null })
      await db.table('stock').update('A1', { colour: 'red' })
      await expect(db.defineTable({ ...stock(engine), columns: { ...stock(engine).columns, price: 'string' } })).rejects.toThrow(SchemaConflictError)
      await expect(db.defineTable({ ...stock(engine), primaryKey: 'name' })).rejects.toThrow(SchemaConflictError)
      await expect(db.defineTable({ ...stock(engine), engine: engine === 'yjs' ? 'automerge' : 'yjs' })).rejects.toThrow(SchemaConflictError)
    } finally {
      await db.close()
    }
  })
})

describe('schema replication', () => {
  it('keeps columns from a newer peer before this peer knows them, then learns the schema', async () => {
    const a = await Shoal.open({ dir: await tempDir() })
    const b = await Shoal.open({ dir: await tempDir() })
    try {
      const base = stock('yjs')
      const events: ChangeEvent[] = []
      a.subscribe((e) => events.push(e))
      await a.defineTable(base)
      await b.defineTable(base)
      await a.defineTable({ ...base, columns: { ...base.columns, colour: 'string' } })
      await a.table('stock').put('A1', { store: '7', colour: 'red', qty: 2 })
      const rowEvent = events.find((e) => e.table === 'stock')!
      await b.applyRemoteDelta('stock', rowEvent.partition, rowEvent.key, rowEvent.delta, 'peer-a')
      expect(b.schema('stock').columns.colour).toBeUndefined()
      expect(await b.table('stock').get('A1')).toMatchObject({ colour: 'red', qty: 2 })
      for (const e of events.filter((e) => e.table === '_tables')) await b.applyRemoteDelta(e.table, e.partition, e.key, e.delta, 'peer-a')
      expect(b.schema('stock').columns.colour).toBe('string')
      await b.table('stock').update('A1', { colour: 'blue' })
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('bad input', () => {
  it('refuses malformed schemas with the field named', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      const good = stock('yjs')
      const cases: Array<[unknown, RegExp]> = [
        [null, /^a table schema must be a JSON object$/],
        [{ ...good, name: '1bad' }, /^'name' must be a table name: a letter followed by up to 62 letters, digits or '_' \(got "1bad"\)$/],
        [{ ...good, name: 'a-b' }, /'name' must be a table name: .* \(got "a-b"\)/],
        [{ ...good, primaryKey: 'nope' }, /^table 'stock': 'primaryKey' names "nope", which is not among the columns$/],
        [{ ...good, primaryKey: 'qty' }, /'primaryKey' names column 'qty', which is counter; it must be string or number/],
        [{ ...good, partitionBy: 'sku' }, /'partitionBy' must be a column other than the primary key/],
        [{ ...good, engine: 'sqlite' }, /'engine' must be one of yjs, automerge, columns \(got "sqlite"\)/],
        [{ ...good, engine: 'columns' }, /'engine' is 'columns', which has no text cells, but column 'notes' is text; use the yjs or automerge engine/],
        [{ ...good, columns: { ...good.columns, x: 'float' } }, /'columns\.x' must be one of string, number, boolean, json, counter, text \(got "float"\)/],
        [{ ...good, columns: { ...good.columns, '9x': 'string' } }, /'columns\.9x' must be a column name/],
        [{ ...good, columns: {} }, /'columns' is empty/],
        [{ ...good, primarykey: 'sku' }, /'primarykey' is not a known field \(allowed: name, primaryKey, partitionBy, engine, columns\)/],
      ]
      for (const [schema, message] of cases) {
        await expect(db.defineTable(schema as TableSchema)).rejects.toThrow(SchemaError)
        await expect(db.defineTable(schema as TableSchema)).rejects.toThrow(message)
      }
      expect(db.tables()).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('refuses bad rows, keys and arguments for every call, and nothing stored changes', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      await db.defineTable(stock('yjs'))
      const t = db.table('stock')
      await t.put('A1', { store: '7', name: 'ok', price: 1, qty: 1, notes: 'n' })
      const statusBefore = await db.status()
      const rowBefore = await t.get('A1')

      expect(() => db.table('nope')).toThrow(UnknownTableError)
      expect(() => t.subscribe('x' as never)).toThrow(ValidationError)
      expect(() => db.subscribe(null as never)).toThrow(ValidationError)
      await expect(Shoal.open({} as never)).rejects.toThrow(/needs \{ dir/)
      await expect(Shoal.open({ dir: '/tmp/x', rowCacheSize: 0 })).rejects.toThrow(/rowCacheSize/)
      await expect(t.put('A2', { store: '7', colour: 'red' })).rejects.toThrow(UnknownColumnError)
      await expect(t.put('A2', { store: '7', price: 'cheap' })).rejects.toThrow(/column 'price' \(number\): expected a finite number/)
      await expect(t.put('A2', { store: '7', price: Number.NaN })).rejects.toThrow(ValidationError)
      await expect(t.put('A2', { store: '7', qty: 1.5 })).rejects.toThrow(/expected an integer/)
      await expect(t.put('A2', { store: '7', notes: 5 })).rejects.toThrow(ValidationError)
      await expect(t.put('A2', { price: 1 })).rejects.toThrow(PartitionError)
      await expect(t.put('A1', { store: '8' })).rejects.toThrow(/cannot change/)
      await expect(t.put('A1', { sku: 'B1' })).rejects.toThrow(/primary key/)
      await expect(t.put('', { store: '7' })).rejects.toThrow(/must not be empty/)
      await expect(t.put('a\u0000b', { store: '7' })).rejects.toThrow(/NUL/)
      await expect(t.put('x'.repeat(600), { store: '7' })).rejects.toThrow(/bytes; the limit is 512/)
      await expect(t.put('A2', null as never)).rejects.toThrow(ValidationError)
      await expect(t.put('A2', [] as never)).rejects.toThrow(ValidationError)
      await expect(t.update('A1', { name: undefined })).rejects.toThrow(/use null to clear/)
      await expect(t.update('zz', { name: 'x' })).rejects.toThrow(RowNotFoundError)
      await expect(t.increment('A1', 'price', 1)).rejects.toThrow(/is number, not counter/)
      await expect(t.increment('A1', 'nope', 1)).rejects.toThrow(UnknownColumnError)
      await expect(t.increment('A1', 'qty', 0.5)).rejects.toThrow(/must be an integer/)
      await expect(t.editText('A1', 'notes', { index: 99, insert: 'x' })).rejects.toThrow(/outside 0..1/)
      await expect(t.editText('A1', 'notes', { index: 0, delete: 5 })).rejects.toThrow(/cannot delete 5/)
      await expect(t.editText('A1', 'name', { index: 0, insert: 'x' })).rejects.toThrow(/is string, not text/)
      await expect(t.get('')).rejects.toThrow(ValidationError)
      await expect(t.scan({ limit: 0 })).rejects.toThrow(/scan limit/)
      await expect(t.scan({ after: 'A1' })).rejects.toThrow(/'next' cursor/)
      await expect(t.put('A3', { store: '7', price: 1 }, { partition: '8' })).rejects.toThrow(PartitionError)
      await expect(db.applyRemoteDelta('nope', '7', 'A1', new Uint8Array([1]), 'peer')).rejects.toThrow(UnknownTableError)
      await expect(db.applyRemoteDelta('stock', '7', 'A1', new Uint8Array([255, 255, 255, 1, 2]), 'peer')).rejects.toThrow(/not a valid Yjs update/)
      await expect(db.applyRemoteDelta('stock', '7', 'A1', new Uint8Array(2 * 1024 * 1024), 'peer')).rejects.toThrow(/over the 1048576-byte limit/)

      expect(await db.status()).toEqual(statusBefore)
      expect(await t.get('A1')).toEqual(rowBefore)
      expect(await t.get('A2')).toBeNull()
    } finally {
      await db.close()
    }
  })

  it('refuses a row that would grow past the size limit, keeping the row as it was', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    try {
      const columns = Object.fromEntries(['id', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map((c) => [c, 'string' as const]))
      await db.defineTable({ name: 'docs', primaryKey: 'id', columns })
      const t = db.table('docs')
      const big = 'x'.repeat(200 * 1024)
      await t.put('d', { c1: big })
      for (const c of ['c2', 'c3', 'c4', 'c5']) await t.update('d', { [c]: big })
      const refused = await t.update('d', { c6: big }).then(() => null, (error: unknown) => error)
      expect(refused).toBeInstanceOf(Error)
      expect((refused as Error).message).toMatch(/over the 1048576-byte limit/)
      const row = (await t.get('d'))!
      expect(row.c6).toBeNull()
      expect(row.c5).toBe(big)
      await t.update('d', { c1: 'small' })
      expect((await t.get('d'))!.c1).toBe('small')
    } finally {
      await db.close()
    }
  })

  it('refuses a data folder that another process holds, with a clear message', async () => {
    const dir = await tempDir()
    const db = await Shoal.open({ dir })
    try {
      // LevelDB's lock is per process; a second open in this process hits the same lock file.
      await expect(Shoal.open({ dir })).rejects.toThrow(StoreOpenError)
      await expect(Shoal.open({ dir })).rejects.toThrow(/in use by another process/)
    } finally {
      await db.close()
    }
  })

  it('refuses a data folder path that is a file', async () => {
    const dir = await tempDir()
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(dir, 'file'), 'x')
    await expect(Shoal.open({ dir: join(dir, 'file') })).rejects.toThrow(StoreOpenError)
  })
})

describe('store format', () => {
  it('refuses a data folder written in another store format, naming it', async () => {
    const dir = await tempDir()
    const db = await Shoal.open({ dir })
    await db.close()
    const { Level } = await import('level')
    const raw = new Level<string, string>(dir)
    await raw.sublevel<string, string>('meta', { valueEncoding: 'utf8' }).put('format', '99')
    await raw.close()
    await expect(Shoal.open({ dir })).rejects.toThrow(/store format 99; this Shoal reads format 1/)
  })
})

describe('a damaged row on disk', () => {
  it('refuses only the operations on that row, names it, and check() reports it', async () => {
    const dir = await tempDir()
    const db = await Shoal.open({ dir })
    await db.defineTable({ name: 'items', primaryKey: 'id', columns: { id: 'string', qty: 'counter' } })
    await db.table('items').put('good', { qty: 1 })
    await db.table('items').put('bad', { qty: 1 })
    await db.close()
    const { Level } = await import('level')
    const raw = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
    const rows = raw.sublevel<string, Uint8Array>('rows', { valueEncoding: 'view' })
    const id = 'items\u0000\u0000bad'
    const record = (await rows.get(id))!
    const damaged = record.slice()
    damaged.fill(0xff, 18)
    await rows.put(id, damaged)
    await raw.close()

    const again = await Shoal.open({ dir })
    try {
      const t = again.table('items')
      const [good, bad] = await Promise.allSettled([t.increment('good', 'qty', 1), t.increment('bad', 'qty', 1)])
      expect(good.status).toBe('fulfilled')
      expect(bad.status).toBe('rejected')
      expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(StoreCorruptError)
      expect(String((bad as PromiseRejectedResult).reason.message)).toMatch(/stored row 'bad' of table 'items'.*shoal check/)
      expect(await t.get('good')).toEqual({ id: 'good', qty: 2 })
      await expect(t.get('bad')).rejects.toThrow(StoreCorruptError)
      const report = await again.check()
      expect(report.problems.some((p) => p.includes('items//bad'))).toBe(true)
    } finally {
      await again.close()
    }
  })
})
