import { afterEach } from 'vitest'
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

/** Forgets the stores opened so far (a property test that closed its own between runs). */
export function forgetStores(): void {
  open.splice(0)
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
