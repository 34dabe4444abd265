import { describe, expect, it } from 'vitest'
import type { Carries } from '../../src/sync/carries.js'
import type { SyncReplica } from '../../src/sync/replica.js'
import type { RowBytes } from '../../src/sync/sync-messages.js'
import { DIGEST_TREE_DEPTH } from '../../src/constants.js'
import { NODE_HASH_BYTES } from '../../src/sync/sync-messages.js'
import { LEAF_COUNT, leafOf, TREE_FANOUT } from '../../src/table/digest-tree.js'
import { engineFor } from '../../src/table/engines.js'
import { RowDocument } from '../../src/table/row.js'
import { validateSchema, type EngineName, type ResolvedSchema } from '../../src/table/schema.js'

/*
 * What every SyncReplica must do, whatever holds its rows (automerge-repo's adapter suites are the
 * model): run by test/sync/replica.test.ts against the store-backed replica and the simulator's
 * in-memory one. The reconciler and responder are written against this interface alone, so an
 * implementation passing this suite can be reconciled with any other.
 */

export interface ReplicaUnderTest {
  replica: SyncReplica
  close(): Promise<void>
}

/** Makes an empty replica holding `tables`, carrying `carries`. */
export type ReplicaFactory = (tables: readonly ResolvedSchema[], carries: Carries) => Promise<ReplicaUnderTest>

export function stockTable(engine: EngineName): ResolvedSchema {
  return validateSchema({ name: 'stock', primaryKey: 'id', partitionBy: 'store', engine, columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', note: engine === 'columns' ? 'string' : 'text' } })
}

/** Whole encoded rows written by a third replica ("writer"). */
export function makeRows(schema: ResolvedSchema, partition: string, count: number, prefix = 'k'): RowBytes[] {
  const rows: RowBytes[] = []
  for (let i = 0; i < count; i++) {
    const key = `${prefix}${i}`
    const doc = RowDocument.create(engineFor(schema.engine), { actor: 'writer', nowSeconds: () => 0 }, schema.name, key)
    doc.apply({ op: 'put', values: { id: key, store: partition, sku: `SKU-${i}`, qty: i, note: `row ${i}` } }, schema)
    rows.push({ key, bytes: doc.encode() })
    doc.dispose()
  }
  return rows
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

async function allRows(replica: SyncReplica, table: string, partition: string, maxBytes: number): Promise<Array<{ pageBytes: number; rows: RowBytes[] }>> {
  const pages: Array<{ pageBytes: number; rows: RowBytes[] }> = []
  let after = null
  for (let guard = 0; guard < 10_000; guard++) {
    const page: Awaited<ReturnType<SyncReplica['range']>> = await replica.range(table, partition, 0, LEAF_COUNT, after, maxBytes)
    pages.push({ pageBytes: page.rows.reduce((s, r) => s + r.bytes.length, 0), rows: page.rows })
    if (page.next === null) return pages
    after = page.next
  }
  throw new Error('range walk did not end')
}

export function replicaContract(name: string, make: ReplicaFactory): void {
  describe.each(['yjs', 'automerge', 'columns'] as const)(`SyncReplica contract: ${name} (%s)`, (engine) => {
    const table = stockTable(engine)

    async function withReplica<T>(carries: Carries, body: (r: SyncReplica) => Promise<T>): Promise<T> {
      const r = await make([table], carries)
      try {
        return await body(r.replica)
      } finally {
        await r.close()
      }
    }

    it('says what it carries and which tables it knows (the tables it was built with)', async () => {
      await withReplica({ stock: ['1'] }, async (r) => {
        expect(r.carries()).toEqual({ stock: ['1'] })
        expect(r.knowsTable('stock')).toBe(true)
        expect(r.knowsTable('nope')).toBe(false)
        expect(r.holds('stock', '1')).toBe(false)
      })
    })

    it('merges rows, lists the partition with its live rows, and is idempotent', async () => {
      await withReplica({}, async (r) => {
        const rows = makeRows(table, '1', 20)
        expect(await r.apply('stock', '1', rows, 'peer')).toEqual({ changed: 20, refused: 0 })
        expect(r.holds('stock', '1')).toBe(true)
        const root = r.roots().find((p) => p.table === 'stock' && p.partition === '1')!
        expect(root.rows).toBe(20)
        expect(hex(root.root)).not.toBe('0'.repeat(32))
        expect(r.partitionRoot('stock', '1')).toEqual(root)
        expect(r.partitionRoot('stock', '2')).toBeUndefined()
        expect(await r.apply('stock', '1', rows, 'peer')).toEqual({ changed: 0, refused: 0 })
        expect(hex(r.roots().find((p) => p.table === 'stock')!.root)).toBe(hex(root.root))
      })
    })

    it('refuses garbage rows and rows of partitions it does not carry, changing nothing', async () => {
      await withReplica({ stock: ['1'] }, async (r) => {
        const result = await r.apply('stock', '1', [{ key: 'bad', bytes: new Uint8Array([1, 2, 3, 4, 5]) }], 'peer')
        expect(result).toEqual({ changed: 0, refused: 1 })
        expect(r.holds('stock', '1')).toBe(false)
        expect(await r.apply('stock', '2', makeRows(table, '2', 3), 'peer')).toEqual({ changed: 0, refused: 3 })
        expect(r.holds('stock', '2')).toBe(false)
        expect(r.roots().filter((p) => p.table === 'stock')).toEqual([])
      })
    })

    it('walks a partition in pages: every row once, in (leaf, key) order, pages near maxBytes', async () => {
      await withReplica({}, async (r) => {
        const rows = makeRows(table, '1', 60)
        await r.apply('stock', '1', rows, 'peer')
        const biggest = Math.max(...rows.map((x) => x.bytes.length))
        const maxBytes = biggest * 7
        const pages = await allRows(r, 'stock', '1', maxBytes)
        const keys = pages.flatMap((p) => p.rows.map((x) => x.key))
        expect([...keys].sort()).toEqual(rows.map((x) => x.key).sort())
        expect(new Set(keys).size).toBe(keys.length)
        expect(pages.length).toBeGreaterThan(1)
        for (const p of pages) expect(p.rows.length === 1 || p.pageBytes <= maxBytes).toBe(true)
        expect(await r.range('stock', '9', 0, LEAF_COUNT, null, maxBytes)).toEqual({ rows: [], next: null })
      })
    })

    it('describes its digest tree: descending non-zero children reaches exactly the leaves holding rows', async () => {
      await withReplica({}, async (r) => {
        const rows = makeRows(table, '1', 30)
        await r.apply('stock', '1', rows, 'peer')
        let frontier = [0]
        for (let level = 0; level < DIGEST_TREE_DEPTH; level++) {
          const hashes = await r.children('stock', '1', level, frontier)
          expect(hashes.length).toBe(frontier.length * TREE_FANOUT * NODE_HASH_BYTES)
          const next: number[] = []
          frontier.forEach((node, i) => {
            for (let c = 0; c < TREE_FANOUT; c++) {
              const at = (i * TREE_FANOUT + c) * NODE_HASH_BYTES
              if (hashes.subarray(at, at + NODE_HASH_BYTES).some((b) => b !== 0)) next.push(node * TREE_FANOUT + c)
            }
          })
          frontier = next
        }
        expect(frontier.sort((x, y) => x - y)).toEqual([...new Set(rows.map((x) => leafOf(x.key)))].sort((x, y) => x - y))
        const listed = await r.leafRows('stock', '1', frontier)
        expect(listed.map((x) => x.key).sort()).toEqual(rows.map((x) => x.key).sort())
        for (const row of listed) {
          expect(row.leaf).toBe(leafOf(row.key))
          expect(row.hash.length).toBe(NODE_HASH_BYTES)
        }
        // a partition not held answers all-zero children and no rows
        expect((await r.children('stock', 'nope', 0, [0])).every((b) => b === 0)).toBe(true)
        expect(await r.leafRows('stock', 'nope', frontier.slice(0, 3))).toEqual([])
      })
    })

    it('serves whole rows and deltas that bring another replica to the same state', async () => {
      const a = await make([table], {})
      const b = await make([table], {})
      try {
        const rows = makeRows(table, '1', 10)
        await a.replica.apply('stock', '1', rows, 'peer')
        const whole = await a.replica.fetch('stock', '1', rows.map((x) => ({ key: x.key, version: null })))
        expect(whole.map((x) => x.key)).toEqual(rows.map((x) => x.key))
        await b.replica.apply('stock', '1', whole.map((x) => ({ key: x.key, bytes: x.bytes! })), 'a')
        expect(hex(b.replica.roots().find((p) => p.table === 'stock')!.root)).toBe(hex(a.replica.roots().find((p) => p.table === 'stock')!.root))
        // a change on a; b asks for what it lacks against its version
        const doc = RowDocument.decode(engineFor(engine), whole[0]!.bytes!, { actor: 'other', nowSeconds: () => 0 }, 'stock', rows[0]!.key)
        const delta = doc.apply({ op: 'increment', column: 'qty', by: 5 }, table)!
        doc.dispose()
        await a.replica.apply('stock', '1', [{ key: rows[0]!.key, bytes: delta }], 'other')
        const [version] = await b.replica.versions('stock', '1', [rows[0]!.key])
        expect(version).not.toBeNull()
        const [answerRow] = await a.replica.fetch('stock', '1', [{ key: rows[0]!.key, version: version! }])
        expect(answerRow!.bytes).not.toBeNull()
        // a holds all b has: its version (for b to send back what a lacks) is left out, where
        // the engine can tell (a Yjs state vector does not name deletions: it cannot).
        expect(answerRow!.version === null).toBe(engine !== 'yjs')
        await b.replica.apply('stock', '1', [{ key: rows[0]!.key, bytes: answerRow!.bytes! }], 'a')
        expect(hex(b.replica.roots().find((p) => p.table === 'stock')!.root)).toBe(hex(a.replica.roots().find((p) => p.table === 'stock')!.root))
        // b takes a change a lacks: now a's version comes back with its answer, for every engine.
        const third = RowDocument.decode(engineFor(engine), whole[1]!.bytes!, { actor: 'third', nowSeconds: () => 0 }, 'stock', rows[1]!.key)
        const onlyB = third.apply({ op: 'increment', column: 'qty', by: 2 }, table)!
        third.dispose()
        await b.replica.apply('stock', '1', [{ key: rows[1]!.key, bytes: onlyB }], 'third')
        const [behind] = await a.replica.fetch('stock', '1', [{ key: rows[1]!.key, version: (await b.replica.versions('stock', '1', [rows[1]!.key]))[0]! }])
        expect(behind!.version).not.toBeNull()
        const back = await b.replica.deltaSince('stock', '1', rows[1]!.key, behind!.version!)
        await a.replica.apply('stock', '1', [{ key: rows[1]!.key, bytes: back! }], 'b')
        expect(hex(b.replica.roots().find((p) => p.table === 'stock')!.root)).toBe(hex(a.replica.roots().find((p) => p.table === 'stock')!.root))
        expect(await a.replica.versions('stock', '1', ['absent', rows[2]!.key])).toEqual([null, expect.any(Uint8Array)])
        expect(await a.replica.deltaSince('stock', '1', 'absent', version!)).toBeNull()
      } finally {
        await a.close()
        await b.close()
      }
    })
  })
}

