import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Shoal } from '../src/shoal.js'
import { CATALOG_TABLE } from '../src/table/catalog.js'
import { toHex } from '../src/table/hash.js'
import type { TableSchema } from '../src/table/schema.js'

/*
 * The reference dataset hostile inputs are thrown at: a real store (LevelDB in a temp folder)
 * with a Yjs table partitioned by store, an Automerge one, and an unpartitioned Yjs table, every
 * column kind (registers, counters, text), live and deleted rows. fsync is off: durability is the
 * crash tests' subject, and here it would only slow the run.
 */

export const REFERENCE_TABLES: TableSchema[] = [
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string', note: 'text', price: 'number', open: 'boolean', tags: 'json' } },
  { name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', amount: 'number', note: 'text', units: 'counter', paid: 'boolean' } },
  { name: 'catalog', primaryKey: 'sku', columns: { sku: 'string', name: 'string', price: 'number', description: 'text' } },
  { name: 'shelves', primaryKey: 'id', partitionBy: 'store', engine: 'columns', columns: { id: 'string', store: 'string', label: 'string', facings: 'counter', width: 'number', open: 'boolean', tags: 'json' } },
]

/** A reference row's key: each table names its rows its own way. */
export function referenceKey(table: string, store: string, suffix: string): string {
  return table === 'stock' ? `${store}:${suffix}` : table === 'sales' ? `${store}-${suffix}` : table === 'shelves' ? `${store}/${suffix}` : `SKU-${suffix}`
}

export const STORES = ['1', '2', '3']
export const KEYS = ['a', 'b', 'c', 'd', 'e', 'f']

export interface Reference {
  db: Shoal
  dir: string
  close(): Promise<void>
}

export async function openReference(prefix: string): Promise<Reference> {
  const dir = await mkdtemp(join(tmpdir(), `shoal-fuzz-${prefix}-`))
  const db = await Shoal.open({ dir, syncWrites: false, actor: 'fuzz-reference' })
  for (const t of REFERENCE_TABLES) await db.defineTable(t)
  let n = 0
  for (const store of STORES) {
    for (const key of KEYS) {
      n++
      await db.table('stock').put(`${store}:${key}`, { store, sku: `SKU-${key}`, qty: n, shelf: `S${n % 4}`, note: `note ${key}`, price: n * 1.25, open: n % 2 === 0, tags: { n, list: [key] } })
      await db.table('sales').put(`${store}-${key}`, { store, amount: n * 10, note: `sale ${key}`, units: n, paid: n % 3 === 0 })
      await db.table('shelves').put(`${store}/${key}`, { store, label: `Shelf ${key}`, facings: n % 5, width: n * 0.5, open: n % 2 === 1, tags: [key] })
    }
    // Deleted rows too: a peer's delta may try to revive them.
    await db.table('stock').delete(`${store}:${KEYS[0]}`)
    await db.table('sales').delete(`${store}-${KEYS[1]}`)
    await db.table('shelves').delete(`${store}/${KEYS[2]}`)
  }
  for (const key of KEYS) await db.table('catalog').put(`SKU-${key}`, { name: `Item ${key}`, price: 3.5, description: `About ${key}` })
  await db.table('stock').increment(`1:b`, 'qty', 5)
  await db.table('stock').editText(`2:c`, 'note', { index: 0, delete: 1, insert: 'N' })
  return {
    db,
    dir,
    close: async () => {
      await db.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Digest root and row count of every partition of every table (the catalog included). */
export function fingerprint(db: Shoal): string {
  const source = db.replication()
  const parts: string[] = []
  for (const table of [CATALOG_TABLE, ...source.tables().map((t) => t.name)]) {
    for (const p of source.partitions(table)) parts.push(`${table}/${JSON.stringify(p.partition)}:${p.rows}:${toHex(p.digest)}`)
  }
  return parts.join(' ')
}

/** Every live row of every table as read back, with the digests. */
export async function snapshot(db: Shoal): Promise<string> {
  const rows: Record<string, unknown[]> = {}
  for (const schema of db.tables()) {
    const all: unknown[] = []
    let after: string | undefined
    for (;;) {
      const page = await db.table(schema.name).scan({ limit: 1000, ...(after === undefined ? {} : { after }) })
      all.push(...page.rows)
      if (page.next === null) break
      after = page.next
    }
    rows[schema.name] = all
  }
  return JSON.stringify({ digests: fingerprint(db), schemas: db.tables(), rows })
}

export async function checkProblems(db: Shoal): Promise<string[]> {
  return (await db.check()).problems
}
