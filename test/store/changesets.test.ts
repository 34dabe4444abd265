import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { ForbiddenError, Shoal } from '../../src/index.js'
import type { ChangeEvent } from '../../src/store/write-batch.js'
import { MAX_CHANGESET_BYTES, signChangeset, verifyChangeset, type Changeset } from '../../src/trust/changeset.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * Changesets in the store (docs/trust.md): a private-mesh store signs its own writes, one
 * changeset per (table, partition) per batch, logged atomically with the rows; a peer's changeset
 * is merged whole or not at all, logged once, and its deltas must hold only its author's operations.
 */

const MESH = '12D3KooWMeshMeshMeshMeshMeshMeshMeshMeshMeshMesh'
const SCHEMA = { name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', name: 'string', qty: 'counter' } } as const

interface Member {
  key: PrivateKey
  id: string
  db: Shoal
}

async function member(guard?: (table: string, partition: string) => void, dir?: string, key?: PrivateKey): Promise<Member> {
  const k = key ?? (await generateKeyPair('Ed25519'))
  const id = peerIdFromPrivateKey(k).toString()
  const db = await Shoal.open({
    dir: dir ?? (await tempDir()),
    actor: id,
    signer: { mesh: MESH, author: id, sign: (c: Changeset) => signChangeset(c, k) },
    ...(guard === undefined ? {} : { guard }),
  })
  await db.defineTable(SCHEMA)
  return { key: k, id, db }
}

function capture(db: Shoal): ChangeEvent[] {
  const events: ChangeEvent[] = []
  db.replication().subscribe((e) => events.push(e))
  return events
}

describe('changesets in the store', () => {
  it('signs one changeset per partition per batch, logs it with the rows, and keeps sequence numbers across restarts', async () => {
    const a = await member()
    const events = capture(a.db)
    const stock = a.db.table('stock')
    await Promise.all([stock.put('a', { store: '1', name: 'x' }), stock.put('b', { store: '1', name: 'y' }), stock.put('c', { store: '2', name: 'z' })])
    const mine = events.filter((e) => e.table === 'stock')
    expect(mine).toHaveLength(3)
    for (const e of mine) expect(e.changeset?.author).toBe(a.id)
    expect(mine[0]!.changeset).toBe(mine[1]!.changeset)
    expect(mine[2]!.changeset).not.toBe(mine[0]!.changeset)
    const cs = await verifyChangeset(mine[0]!.changeset!.bytes, MESH)
    expect(cs.rows.map((r) => r.key)).toEqual(['a', 'b'])
    expect(a.db.replication().changesetClock('stock', '1')).toEqual([{ author: a.id, ranges: [[1, 1]] }])
    await stock.increment('a', 'qty', 2)
    expect(a.db.replication().changesetClock('stock', '1')).toEqual([{ author: a.id, ranges: [[1, 2]] }])

    const dir = a.db.dir
    await a.db.close()
    const again = await member(undefined, dir, a.key)
    await again.db.table('stock').increment('a', 'qty', 1)
    expect(again.db.replication().changesetClock('stock', '1')).toEqual([{ author: a.id, ranges: [[1, 3]] }])
    const page = await again.db.replication().readChangesets('stock', '1', a.id, [[1, 3]], 1)
    expect(page.changesets).toHaveLength(1)
    expect(page.next).toBe(2)
    const all = await again.db.replication().readChangesets('stock', '1', a.id, [[2, 3]], 1 << 20)
    expect((await Promise.all(all.changesets.map((b) => verifyChangeset(b, MESH)))).map((c) => c.seq)).toEqual([2, 3])
    await again.db.close()
  })

  it('splits a batch past MAX_CHANGESET_BYTES into changesets that follow each other', async () => {
    const a = await member()
    const events = capture(a.db)
    const stock = a.db.table('stock')
    await Promise.all(Array.from({ length: 6 }, (_, i) => stock.put(`big${i}`, { store: '1', name: String(i).repeat(200_000) })))
    const refs = [...new Set(events.filter((e) => e.table === 'stock').map((e) => e.changeset!))]
    const sets = await Promise.all(refs.map((r) => verifyChangeset(r.bytes, MESH)))
    // Rows of one batch share a changeset until it is full, then the next one starts.
    expect(sets.some((c) => c.rows.length > 1)).toBe(true)
    expect(sets.length).toBeGreaterThan(1)
    expect(sets.map((c) => c.seq)).toEqual(sets.map((_, i) => i + 1))
    expect(sets.flatMap((c) => c.rows.map((r) => r.key)).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `big${i}`))
    for (const r of refs) expect(r.bytes.length).toBeLessThanOrEqual(MAX_CHANGESET_BYTES)
  })

  it("merges a peer's changeset whole, logs it once, and reports a repeat as known", async () => {
    const a = await member()
    const b = await member()
    const events = capture(a.db)
    await a.db.table('stock').put('a', { store: '1', name: 'x', qty: 5 })
    const ref = events.find((e) => e.table === 'stock')!.changeset!
    const cs = await verifyChangeset(ref.bytes, MESH)
    const replica = b.db.replication()
    expect(await replica.applyChangeset(cs, ref.bytes, a.id)).toBe('changed')
    expect(await b.db.table('stock').get('a')).toMatchObject({ name: 'x', qty: 5 })
    expect(await replica.applyChangeset(cs, ref.bytes, a.id)).toBe('known')
    expect(replica.changesetClock('stock', '1')).toEqual([{ author: a.id, ranges: [[1, 1]] }])
    const logged = await replica.readChangesets('stock', '1', a.id, [[1, 1]], 1 << 20)
    expect(new Uint8Array(logged.changesets[0]!)).toEqual(new Uint8Array(ref.bytes))
    await a.db.close()
    await b.db.close()
  })

  it('refuses a whole changeset when one of its rows fails, storing nothing of it', async () => {
    const a = await member()
    const b = await member()
    const events = capture(a.db)
    await Promise.all([a.db.table('stock').put('a', { store: '1', name: 'x' }), a.db.table('stock').put('b', { store: '1', name: 'y' })])
    // b already holds key 'b' in partition 2: a's row for it in partition 1 must be refused, and 'a' with it.
    await b.db.table('stock').put('b', { store: '2', name: 'mine' })
    const ref = events.find((e) => e.table === 'stock')!.changeset!
    const cs = await verifyChangeset(ref.bytes, MESH)
    const before = await b.db.replication().partitions('stock')
    await expect(b.db.replication().applyChangeset(cs, ref.bytes, a.id)).rejects.toThrow(/partition/)
    expect(await b.db.table('stock').get('a')).toBeNull()
    expect(b.db.replication().partitions('stock')).toEqual(before)
    expect(b.db.replication().changesetClock('stock', '1')).toEqual([])
    expect((await b.db.check()).problems).toEqual([])
    await a.db.close()
    await b.db.close()
  })

  it("refuses a changeset whose deltas carry another author's operations", async () => {
    const a = await member()
    const b = await member()
    const mallory = await member()
    const events = capture(a.db)
    await a.db.table('stock').put('a', { store: '1', name: 'genuine' })
    const genuine = await verifyChangeset(events.find((e) => e.table === 'stock')!.changeset!.bytes, MESH)
    // Mallory re-signs a's delta as her own changeset: the delta's operations are a's, not hers.
    const forged = await signChangeset({ ...genuine, author: mallory.id }, mallory.key)
    await expect(b.db.replication().applyChangeset(forged.changeset, forged.bytes, mallory.id)).rejects.toThrow(/author/)
    expect(await b.db.table('stock').get('a')).toBeNull()
    for (const m of [a, b, mallory]) await m.db.close()
  })

  it('refuses local writes the guard forbids, changing nothing', async () => {
    const guard = (table: string, partition: string): void => {
      if (table === 'stock' && partition !== '1') throw new ForbiddenError(`may not write stock/${partition}`)
    }
    const a = await member(guard)
    await a.db.table('stock').put('a', { store: '1', name: 'ok' })
    await expect(a.db.table('stock').put('b', { store: '2', name: 'no' })).rejects.toBeInstanceOf(ForbiddenError)
    expect(await a.db.table('stock').get('b')).toBeNull()
    expect(a.db.replication().changesetClock('stock', '2')).toEqual([])
    expect((await a.db.check()).problems).toEqual([])
    await a.db.close()
  })
})
