import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Shoal } from '../../src/shoal.js'
import { shoal, waitForOutput } from '../helpers/cli.js'
import { tempDir } from '../helpers/tempdir.js'
import type { DialectName } from '../../src/bridge/types.js'
import { createDatabase, DIALECTS, eventually, unavailable, type SqlClient, type TestDatabase } from './databases.js'

/*
 * kill -9 of a real `shoal start` while a SQL client keeps committing counter increments: after
 * restarts, every committed increment is in the Shoal store exactly once — nothing captured is
 * lost (a change is deleted from the capture table only after it is durable in the store) and
 * nothing is applied twice (the store batch records the ids it applied, atomically).
 */

const ROWS = 12
const KILLS = 3
const DDL: Record<DialectName, string> = {
  sqlite: `CREATE TABLE stock (id TEXT PRIMARY KEY, name TEXT, qty INTEGER NOT NULL DEFAULT 0)`,
  postgres: `CREATE TABLE stock (id text PRIMARY KEY, name text, qty integer NOT NULL DEFAULT 0)`,
  mysql: `CREATE TABLE stock (id VARCHAR(20) PRIMARY KEY, name VARCHAR(50), qty INT NOT NULL DEFAULT 0)`,
}

const children: ChildProcess[] = []
const cleanup: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const step of cleanup.splice(0)) await step()
})

async function startPeer(config: string): Promise<ChildProcess> {
  const child = shoal(['start', '--config', config])
  children.push(child)
  await waitForOutput(child, /running; press Ctrl-C/, 45_000)
  return child
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
}

/** Commits increments one by one until stopped; counts the committed ones per row. */
function writer(sql: SqlClient, counts: number[], seed: number): { stop: () => Promise<void> } {
  let running = true
  let state = seed
  const done = (async () => {
    while (running) {
      state = (state * 1103515245 + 12345) % 2 ** 31
      const row = state % ROWS
      await sql.run(`UPDATE stock SET qty = qty + 1 WHERE id = ?`, [`R${row}`])
      counts[row]!++
      // The SQLite client is synchronous: let timers (the kill) run between commits.
      await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  return {
    stop: async () => {
      running = false
      await done
    },
  }
}

describe.each(DIALECTS)('SQL bridge crash safety: %s', (dialect) => {
  let skip: string | null = null
  beforeAll(async () => {
    skip = await unavailable(dialect)
  })

  it('loses no captured change and applies none twice when shoal start is killed with SIGKILL', { timeout: 240_000 }, async (ctx) => {
    if (skip !== null) return ctx.skip()
    const database: TestDatabase = await createDatabase(dialect)
    cleanup.push(() => database.drop())
    const sql = await database.client()
    cleanup.push(() => sql.close())
    await sql.run(DDL[dialect])
    for (let i = 0; i < ROWS; i++) await sql.run(`INSERT INTO stock (id, name, qty) VALUES (?, ?, 100)`, [`R${i}`, `row ${i}`])
    const dir = await tempDir()
    const config = join(dir, 'peer.json')
    await writeFile(
      config,
      JSON.stringify({
        name: `crash-${dialect}`,
        data: join(dir, 'data'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        mdns: false,
        open: true,
        http: false,
        bridge: { database: database.database, tables: [{ table: 'stock', counters: ['qty'] }], pollMs: 20, batchRows: 7 },
      }),
    )
    const counts = new Array<number>(ROWS).fill(0)
    for (let round = 0; round < KILLS; round++) {
      const child = await startPeer(config)
      const w = writer(sql, counts, round + 1)
      // Kill at a different point of the drain each round, while changes keep arriving.
      await new Promise((resolve) => setTimeout(resolve, 150 + round * 170))
      child.kill('SIGKILL')
      await exited(child)
      await new Promise((resolve) => setTimeout(resolve, 50))
      await w.stop()
    }
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(20)

    // A last run drains everything captured, then stops cleanly.
    const child = await startPeer(config)
    await eventually(async () => expect(Number((await sql.rows<{ n: number }>(`SELECT count(*) AS n FROM shoal_capture`))[0]!.n)).toBe(0), 60_000, 'capture table drained')
    child.kill('SIGTERM')
    await exited(child)

    const db = await Shoal.open({ dir: join(dir, 'data') })
    try {
      for (let i = 0; i < ROWS; i++) {
        expect(await db.table('stock').get(`R${i}`), `row R${i}`).toEqual({ id: `R${i}`, name: `row ${i}`, qty: 100 + counts[i]! })
      }
      expect((await db.check()).problems).toEqual([])
    } finally {
      await db.close()
    }
    const rows = await sql.rows<{ id: string; qty: number }>(`SELECT id, qty FROM stock ORDER BY id`)
    for (const row of rows) expect(Number(row.qty), `SQL row ${row.id}`).toBe(100 + counts[Number(row.id.slice(1))]!)
  })
})
