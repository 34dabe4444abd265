import { afterEach, describe, expect, it } from 'vitest'
import { MAX_TABLES } from '../../src/constants.js'
import { Shoal } from '../../src/index.js'
import { CATALOG_TABLE } from '../../src/table/catalog.js'
import { tempDir } from '../helpers/tempdir.js'

/* Each bound on what a store holds, at the limit and one past it, for local writes and peers' rows. */

const open: Shoal[] = []
afterEach(async () => {
  for (const db of open.splice(0)) await db.close()
})

async function db(options: Partial<Parameters<typeof Shoal.open>[0]> = {}, dir?: string): Promise<Shoal> {
  const s = await Shoal.open({ dir: dir ?? (await tempDir()), ...options })
  open.push(s)
  return s
}

describe('store limits', () => {
  it(`holds MAX_TABLES (${MAX_TABLES}) tables and refuses one more, defined here or by a peer`, async () => {
    const a = await db()
    await Promise.all(Array.from({ length: MAX_TABLES }, (_, i) => a.defineTable({ name: `t${i}`, primaryKey: 'id', columns: { id: 'string' } })))
    expect(a.tables()).toHaveLength(MAX_TABLES)
    await expect(a.defineTable({ name: 'one_more', primaryKey: 'id', columns: { id: 'string' } })).rejects.toMatchObject({ code: 'SCHEMA_INVALID', message: expect.stringMatching(/MAX_TABLES/) })
    // the same definition from a peer: a catalog row made by another store
    const b = await db()
    await b.defineTable({ name: 'from_peer', primaryKey: 'id', columns: { id: 'string' } })
    const [row] = await b.replication().encodedRows(CATALOG_TABLE, '', ['from_peer'])
    await expect(a.applyRemoteDelta(CATALOG_TABLE, '', 'from_peer', row!, 'b')).rejects.toMatchObject({ code: 'SCHEMA_INVALID' })
    expect(a.tables()).toHaveLength(MAX_TABLES)
    // existing tables still take columns
    await a.defineTable({ name: 't0', primaryKey: 'id', columns: { id: 'string', more: 'number' } })
    expect((await a.check()).problems).toEqual([])
  })

  it('holds maxPartitionsPerTable partitions of a table and refuses a row for one more, after a restart too', async () => {
    const dir = await tempDir()
    const limits = { maxPartitionsPerTable: 5 }
    let a = await db({ limits }, dir)
    const stock = { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', qty: 'counter' } } as const
    await a.defineTable(stock)
    await Promise.all([1, 2, 3, 4, 5].map((s) => a.table('stock').put(`k${s}`, { store: String(s), qty: 1 })))
    await expect(a.table('stock').put('k6', { store: '6', qty: 1 })).rejects.toMatchObject({ code: 'PARTITION_INVALID', message: expect.stringMatching(/5 partitions here, the limit/) })
    // more rows in the partitions it holds are fine
    await a.table('stock').put('k1b', { store: '1', qty: 2 })
    // a peer's row for a sixth partition is refused the same way
    const b = await db()
    await b.defineTable(stock)
    await b.table('stock').put('p6', { store: '6', qty: 1 })
    const [row] = await b.replication().encodedRows('stock', '6', ['p6'])
    await expect(a.applyRemoteDelta('stock', '6', 'p6', row!, 'b')).rejects.toMatchObject({ code: 'PARTITION_INVALID' })
    await a.close()
    open.splice(open.indexOf(a), 1)
    a = await db({ limits }, dir)
    await expect(a.table('stock').put('k7', { store: '7', qty: 1 })).rejects.toMatchObject({ code: 'PARTITION_INVALID' })
    expect(a.replication().partitions('stock')).toHaveLength(5)
    expect((await a.check()).problems).toEqual([])
  })
})
