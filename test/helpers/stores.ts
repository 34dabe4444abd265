import { afterEach, expect } from 'vitest'
import { Shoal } from '../../src/index.js'
import { tempDir } from './tempdir.js'

/*
 * Stores for anti-entropy tests: opened in fresh folders, closed after each test, and read back
 * whole (rows in key order, digests per partition) to compare replicas.
 */

const open: Shoal[] = []

/** A store in a fresh folder, closed after the test. */
export async function store(): Promise<Shoal> {
  const db = await Shoal.open({ dir: await tempDir() })
  open.push(db)
  return db
}

/** Expects the replicas to hold the same rows and digests, then closes them (a property test's run). */
export async function expectConvergedAndClose(dbs: readonly Shoal[]): Promise<void> {
  const [rows0, ...rows] = await Promise.all(dbs.map((d) => rowsOf(d)))
  for (const r of rows) expect(r).toEqual(rows0)
  const [digests0, ...rest] = await Promise.all(dbs.map(digests))
  for (const d of rest) expect(d).toEqual(digests0)
  await Promise.all(dbs.map((d) => d.close()))
  for (const d of dbs) {
    const i = open.indexOf(d)
    if (i >= 0) open.splice(i, 1)
  }
}

afterEach(async () => {
  for (const db of open.splice(0)) if (db.isOpen) await db.close()
})

/** Every row of a table, in scan order. */
export async function rowsOf(db: Shoal, table = 'stock'): Promise<unknown[]> {
  const out: unknown[] = []
  let after: string | undefined
  for (;;) {
    const page = await db.table(table).scan({ limit: 500, ...(after === undefined ? {} : { after }) })
    out.push(...page.rows)
    if (page.next === null) return out
    after = page.next
  }
}

/** Every table's partitions with their row counts and digests. */
export async function digests(db: Shoal): Promise<unknown> {
  return (await db.status()).tables.map((t) => [t.name, t.partitions])
}
