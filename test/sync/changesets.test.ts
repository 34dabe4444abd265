import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import type { Shoal } from '../../src/index.js'
import { answer, reconcile, type RoundStats } from '../../src/sync/reconciler.js'
import type { SyncRequest, SyncResponse } from '../../src/sync/sync-messages.js'
import { StoreReplica } from '../../src/sync/store-replica.js'
import { signChangeset, verifyChangeset } from '../../src/trust/changeset.js'
import { openSigned, testMember, testMesh, type TestMember, type TestMesh } from '../helpers/mesh.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * Anti-entropy in a private mesh (docs/trust.md): peers compare which signed changesets they hold
 * and ship the missing ones as signed; every receiver checks each changeset's author against the
 * rules, whoever relays it; reads follow the read rules.
 */

const CATALOG = { name: 'catalog', primaryKey: 'sku', columns: { sku: 'string', price: 'number' } } as const
const SALES = { name: 'sales', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', total: 'number' } } as const

interface Node {
  m: TestMember
  db: Shoal
  replica: StoreReplica
  refused: string[]
}

async function node(mesh: TestMesh, group: string, partitions: string[]): Promise<Node> {
  const m = await testMember(mesh, group, partitions)
  const db = await openSigned(await tempDir(), mesh, m)
  const refused: string[] = []
  return { m, db, refused, replica: new StoreReplica(db.replication(), {}, (reason) => refused.push(reason), m.gate) }
}

/** Each side learns the other's admission (the admission handshake does this between real peers). */
async function meet(a: Node, b: Node): Promise<void> {
  await a.m.membership.admit(b.m.id, b.m.admission)
  await b.m.membership.admit(a.m.id, a.m.admission)
}

/** `local` runs a round against `remote`, answering in-process. */
function round(local: Node, remote: Node): Promise<RoundStats> {
  return reconcile(local.replica, (req) => answer(remote.replica, req, local.m.id), { from: remote.m.id })
}

async function rows(db: Shoal, table: string): Promise<unknown[]> {
  return (await db.table(table).scan()).rows.map((r) => r)
}

/** HQ and store 1, met, the sales table defined on HQ and known to the store. */
async function hqAndStore(): Promise<{ hq: Node; store1: Node }> {
  const mesh = await testMesh()
  const hq = await node(mesh, 'hq', [])
  const store1 = await node(mesh, 'store', ['1'])
  await meet(hq, store1)
  await hq.db.defineTable(SALES)
  await round(store1, hq)
  return { hq, store1 }
}

/**
 * HQ and store 1 never meet; a hub (whose group may not write sales) meets both and holds store
 * 1's sale s1, which HQ has not seen.
 */
async function relayedSale(): Promise<{ mesh: TestMesh; hq: Node; hub: Node; store1: Node }> {
  const mesh = await testMesh()
  const hq = await node(mesh, 'hq', [])
  const hub = await node(mesh, 'hub', [])
  const store1 = await node(mesh, 'store', ['1'])
  await meet(hq, hub)
  await meet(hub, store1)
  await hq.db.defineTable(SALES)
  await round(hub, hq)
  await round(store1, hub)
  await store1.db.table('sales').put('s1', { store: '1', total: 10 })
  await round(hub, store1)
  return { mesh, hq, hub, store1 }
}

describe('anti-entropy by changesets', () => {
  it('ships what each side lacks, both ways, and refuses what the author may not write', async () => {
    const mesh = await testMesh()
    const hq = await node(mesh, 'hq', [])
    const store1 = await node(mesh, 'store', ['1'])
    await meet(hq, store1)
    await hq.db.defineTable(CATALOG)
    await hq.db.defineTable(SALES)
    await hq.db.table('catalog').put('tea', { price: 3 })
    await round(store1, hq)
    expect(await store1.db.table('catalog').get('tea')).toMatchObject({ price: 3 })

    // store 1 is compromised: its store takes any local write, its peers must not.
    await store1.db.table('sales').put('s1', { store: '1', total: 10 })
    await store1.db.table('sales').put('s2', { store: '2', total: 99 })
    await store1.db.table('catalog').put('tea', { price: 0 })
    const stats = await round(hq, store1)
    expect(await hq.db.table('sales').get('s1')).toMatchObject({ total: 10 })
    expect(await hq.db.table('sales').get('s2')).toBeNull()
    expect(await hq.db.table('catalog').get('tea')).toMatchObject({ price: 3 })
    // HQ does not even ask for changesets their authors may not write.
    expect(stats.refused).toBe(0)
    expect(stats.rowsReceived).toBe(1)
    // Offered by the store itself (it runs the round): HQ will not even discuss a partition the
    // store may not read (sales/2), and refuses the catalog change.
    const offered = await round(store1, hq)
    expect(offered.refused).toBe(1)
    expect(offered.errors).toEqual([expect.stringMatching(/^sales\/2: .*FORBIDDEN/)])
    expect(hq.refused.filter((r) => r === 'FORBIDDEN')).toHaveLength(1)
    expect(await hq.db.table('sales').get('s2')).toBeNull()
    expect((await hq.db.check()).problems).toEqual([])

    // In sync again, a round exchanges nothing more.
    const again = await round(hq, store1)
    expect(again.changedHere + again.changedThere).toBe(0)
  })

  it('fetches many changesets page by page, each page applied while the next is asked for', async () => {
    const { hq, store1 } = await hqAndStore()
    for (let i = 0; i < 40; i++) await store1.db.table('sales').put(`s${i}`, { store: '1', total: i })
    const asked: string[] = []
    const stats = await reconcile(
      hq.replica,
      async (req) => {
        if (req.type === 'changesets') asked.push(`${req.ranges[0]![0]}`)
        return answer(store1.replica, req, hq.m.id)
      },
      { from: store1.m.id, pageBytes: 1024 },
    )
    expect(stats.errors).toEqual([])
    expect(asked.length).toBeGreaterThan(3)
    expect(stats.rowsReceived).toBe(40)
    expect((await hq.db.table('sales').scan({ partition: '1', limit: 100 })).rows).toHaveLength(40)
    expect(hq.db.replication().changesetClock('sales', '1')).toEqual(store1.db.replication().changesetClock('sales', '1'))
  })

  it("takes a store's sale relayed by a peer that may not write it, learning the author's admission from the relay; refuses forgeries", async () => {
    const { mesh, hq, hub, store1 } = await relayedSale()
    expect(await hub.db.table('sales').get('s1')).toMatchObject({ total: 10 })
    expect(hq.m.gate.knows(store1.m.id)).toBe(false)
    await round(hq, hub)
    expect(await hq.db.table('sales').get('s1')).toMatchObject({ total: 10 })
    expect(hq.m.gate.knows(store1.m.id)).toBe(true)

    // The hub forges: a sale signed by itself (may not write sales), and store 1's changeset re-signed by the hub.
    const events: Uint8Array[] = []
    hub.db.replication().subscribe((e) => e.changeset !== undefined && events.push(e.changeset.bytes))
    await hub.db.table('sales').put('h1', { store: '1', total: 1 })
    const genuine = await verifyChangeset((await store1.db.replication().readChangesets('sales', '1', store1.m.id, [[1, 1]], 1 << 20)).changesets[0]!, mesh.id)
    const resigned = await signChangeset({ ...genuine, seq: 2, rows: genuine.rows }, hub.m.key)
    const offered = await hq.replica.changesets!.apply('sales', '1', [events[0]!, resigned.bytes], hub.m.id)
    expect(offered).toEqual({ changed: 0, refused: 2 })
    expect(hq.refused).toEqual(expect.arrayContaining(['FORBIDDEN', 'SIGNATURE_INVALID']))
    expect(await hq.db.table('sales').get('h1')).toBeNull()
  })

  it("offers a relayed sale with its author's admission, so a peer that never met the author takes it", async () => {
    const { hq, hub, store1 } = await relayedSale()
    expect(hq.m.gate.knows(store1.m.id)).toBe(false)
    // The hub runs the round this time: it offers, HQ answers.
    const stats = await round(hub, hq)
    expect(stats.refused).toBe(0)
    expect(hq.refused).toEqual([])
    expect(hq.m.gate.knows(store1.m.id)).toBe(true)
    expect(await hq.db.table('sales').get('s1')).toMatchObject({ total: 10 })
  })

  it('serves a peer only the partitions its rules let it read, and refuses row requests', async () => {
    const mesh = await testMesh()
    const hq = await node(mesh, 'hq', [])
    const store1 = await node(mesh, 'store', ['1'])
    const store2 = await node(mesh, 'store', ['2'])
    for (const s of [store1, store2]) await meet(hq, s)
    await hq.db.defineTable(SALES)
    for (const s of [store1, store2]) await round(s, hq)
    await store1.db.table('sales').put('a', { store: '1', total: 1 })
    await store2.db.table('sales').put('b', { store: '2', total: 2 })
    for (const s of [store1, store2]) await round(hq, s)
    expect((await rows(hq.db, 'sales')).length).toBe(2)
    // store 2 asks HQ: it hears of its own partition only, whatever it asks for.
    const hello = await answer(hq.replica, { type: 'hello', carries: {}, roots: [], next: null }, store2.m.id)
    expect(hello.type === 'hello' && hello.roots.filter((r) => r.table === 'sales').map((r) => r.partition)).toEqual(['2'])
    const clock = await answer(hq.replica, { type: 'clock', table: 'sales', partition: '1' }, store2.m.id)
    expect(clock).toMatchObject({ type: 'error', code: 'FORBIDDEN' })
    const range = await answer(hq.replica, { type: 'range', table: 'sales', partition: '2', from: 0, to: 1, after: null, maxBytes: 1000 }, store2.m.id)
    expect(range).toMatchObject({ type: 'error', code: 'FORBIDDEN' })
    await round(store2, hq)
    expect((await rows(store2.db, 'sales')).length).toBe(1)
  })

  it('refuses everything from a peer once it is revoked, and a stranger is served nothing', async () => {
    const mesh = await testMesh()
    const hq = await node(mesh, 'hq', [])
    const store1 = await node(mesh, 'store', ['1'])
    const stranger = await node(await testMesh(), 'hq', [])
    await meet(hq, store1)
    await hq.db.defineTable(SALES)
    await round(store1, hq)
    await hq.m.membership.add(await mesh.revoke(store1.m.id))
    await store1.db.table('sales').put('a', { store: '1', total: 1 })
    const stats = await round(hq, store1)
    expect(stats.changedHere).toBe(0)
    expect(await hq.db.table('sales').get('a')).toBeNull()
    const hello = await answer(hq.replica, { type: 'hello', carries: {}, roots: [], next: null }, stranger.m.id)
    expect(hello.type === 'hello' && hello.roots).toEqual([])
  })
})

describe('changeset messages', () => {
  const author = '12D3KooWRm3AETnJHPfMnTvBuQKiKCkSjGxCSHH3ruurPbMUEusP'
  it('round-trip, and hostile fields are refused naming what is wrong', async () => {
    const { decodeRequest, decodeResponse, encodeRequest, encodeResponse } = await import('../../src/sync/sync-messages.js')
    const fc = (await import('fast-check')).default
    const seq = fc.integer({ min: 1, max: 1000 })
    fc.assert(
      fc.property(fc.array(fc.tuple(seq, fc.integer({ min: 0, max: 50 })), { maxLength: 20 }), fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 10 }), (raw, blobs) => {
        // sorted, disjoint ranges
        let at = 0
        const ranges = raw.map(([gap, len]) => {
          const from = at + gap
          at = from + len + 1
          return [from, from + len] as [number, number]
        })
        const reqs: SyncRequest[] = [
          { type: 'clock', table: 'sales', partition: '1' },
          { type: 'changesets', table: 'sales', partition: '1', author, ranges, maxBytes: 1000 },
          { type: 'offer', table: 'sales', partition: '', changesets: blobs, admission: null },
          { type: 'offer', table: 'sales', partition: '1', changesets: blobs, admission: blobs[0] ?? null },
          { type: 'admission', peer: author },
        ]
        for (const r of reqs) expect(decodeRequest(encodeRequest(r))).toEqual(r)
        const res: Array<Exclude<SyncResponse, { type: 'error' }>> = [
          { type: 'clock', authors: [{ author, ranges }] },
          { type: 'changesets', changesets: blobs, next: null },
          { type: 'offer', applied: 1, refused: 0 },
          { type: 'admission', admission: null },
        ]
        for (const r of res) expect(decodeResponse(encodeResponse(r), r.type)).toEqual(r)
      }),
    )
    const { encode } = await import('cborg')
    expect(() => decodeRequest(encode([1, 'changesets', 'sales', '1', author, [[5, 3]], 10]))).toThrow(/sequence number/)
    expect(() => decodeRequest(encode([1, 'changesets', 'sales', '1', author, [[1, 3], [2, 4]], 10]))).toThrow(/sequence number/)
    expect(() => decodeRequest(encode([1, 'changesets', 'sales', '1', 'not a peer\u0000', [], 10]))).toThrow(/author/)
    expect(() => decodeRequest(encode([1, 'offer', 'sales', '1', [new Uint8Array(0)], null]))).toThrow(/changeset/)
    expect(() => decodeRequest(encode([1, 'offer', 'sales', '1', [], new Uint8Array(0)]))).toThrow(/admission/)
    expect(() => decodeRequest(encode([1, 'offer', 'sales', '1', []]))).toThrow(ProtocolError)
    expect(() => decodeResponse(encode([1, 'clock', [[author, [[1, 2 ** 60]]]]]), 'clock')).toThrow(/sequence number/)
  })
})

describe('a hostile responder', () => {
  it('cannot hold a round in a loop by paging changesets that do not move forward', async () => {
    const { hq, store1 } = await hqAndStore()
    await store1.db.table('sales').put('a', { store: '1', total: 1 })
    await store1.db.table('sales').put('b', { store: '1', total: 2 })
    // The store answers every page with its first changeset and "go on from 1".
    const stuck = await reconcile(
      hq.replica,
      async (req) => {
        const res = await answer(store1.replica, req, hq.m.id)
        if (req.type === 'changesets' && res.type === 'changesets') return { type: 'changesets', changesets: res.changesets.slice(0, 1), next: 1 }
        return res
      },
      { from: store1.m.id },
    )
    expect(stuck.errors).toEqual([expect.stringMatching(/does not move past/)])
  })
})
