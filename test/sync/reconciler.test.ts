import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Shoal, type EngineName, type TableSchema } from '../../src/index.js'
import { answer, mostRowsDiffer, newRoundStats, reconcile, type Ask, type RoundStats } from '../../src/sync/reconciler.js'
import { StoreReplica } from '../../src/sync/store-replica.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, MAX_FRAME_BYTES, MAX_ROOTS_PER_FRAME, type SyncRequest } from '../../src/sync/sync-messages.js'
import { digests, expectConvergedAndClose, rowsOf, store } from '../helpers/stores.js'

/*
 * Anti-entropy between real stores, wired request → answer in process (through the wire codec, so
 * byte counts are what a stream would carry). The libp2p transport is tested in test/peer.
 */

const stock = (engine: EngineName): TableSchema => ({
  name: 'stock',
  primaryKey: 'id',
  partitionBy: 'store',
  engine,
  // The columns engine has no text cells: there `note` is a register.
  columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', note: engine === 'columns' ? 'string' : 'text' },
})

interface Wire {
  ask: Ask
  requests: SyncRequest['type'][]
  bytes: { out: number; in: number }
}

/** An Ask that reaches `remote` through the codec, counting frames and bytes. */
function wire(remote: StoreReplica, from = 'initiator'): Wire {
  const w: Wire = {
    requests: [],
    bytes: { out: 0, in: 0 },
    ask: async (req) => {
      const frame = encodeRequest(req)
      w.requests.push(req.type)
      w.bytes.out += frame.length
      const res = encodeResponse(await answer(remote, decodeRequest(frame), from))
      w.bytes.in += res.length
      return decodeResponse(res, req.type)
    },
  }
  return w
}

async function sync(a: Shoal, b: Shoal, carriesA: Record<string, string[]> = {}, carriesB: Record<string, string[]> = {}): Promise<RoundStats & { wire: Wire }> {
  const w = wire(new StoreReplica(b.replication(), carriesB))
  const stats = await reconcile(new StoreReplica(a.replication(), carriesA), w.ask, { from: 'b' })
  expect(stats.errors).toEqual([])
  return { ...stats, wire: w }
}

describe.each(['yjs', 'automerge', 'columns'] as const)('anti-entropy between two stores (%s)', (engine) => {
  it('loads an empty replica completely, schema first, in pages', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock(engine))
    await Promise.all(Array.from({ length: 600 }, (_, i) => a.table('stock').put(`r${i}`, { store: String(i % 3), sku: `s${i}`, qty: i })))
    await a.table('stock').delete('r5')
    const loaded = new Map<string, number>()
    const w = wire(new StoreReplica(a.replication()))
    const stats = await reconcile(new StoreReplica(b.replication()), w.ask, {
      from: 'a',
      pageBytes: 8 * 1024,
      onProgress: (p) => {
        if (p.done) loaded.set(`${p.table}/${p.partition}`, p.received)
      },
    })
    expect(stats.errors).toEqual([])
    expect(b.tables().map((t) => t.name)).toEqual(['stock'])
    expect(await rowsOf(b)).toEqual(await rowsOf(a))
    expect(await digests(b)).toEqual(await digests(a))
    expect(stats.rowsReceived).toBe(600 + 1) // 600 rows (one deleted) + the catalog row
    expect(w.requests.filter((r) => r === 'range').length).toBeGreaterThan(3) // paged
    expect(w.requests).not.toContain('children') // an empty side needs no descent
    expect(Object.fromEntries(loaded)).toEqual({ '_tables/': 1, 'stock/0': 200, 'stock/1': 200, 'stock/2': 200 })
    expect((await b.check()).problems).toEqual([])
  })

  it('in sync: one hello each way and nothing else, however many rows', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock(engine))
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.table('stock').put(`r${i}`, { store: '1', qty: 1 })))
    await sync(b, a)
    const round = await sync(b, a)
    expect(round.wire.requests).toEqual(['hello'])
    expect(round.differing).toBe(0)
    expect(round.wire.bytes.out + round.wire.bytes.in).toBeLessThan(600)
  })

  it('repairs divergent replicas in both directions, transferring only differing rows', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock(engine))
    await Promise.all(Array.from({ length: 400 }, (_, i) => a.table('stock').put(`r${i}`, { store: '1', sku: `s${i}`, qty: 10 })))
    await sync(b, a)
    // Diverge: rows only on a, only on b, and concurrent edits to the same rows on both.
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => a.table('stock').put(`a${i}`, { store: '1', qty: 1 })),
      ...Array.from({ length: 15 }, (_, i) => b.table('stock').put(`b${i}`, { store: '1', qty: 2 })),
      ...Array.from({ length: 10 }, (_, i) => a.table('stock').increment(`r${i}`, 'qty', 3)),
      ...Array.from({ length: 10 }, (_, i) => b.table('stock').increment(`r${i}`, 'qty', 4)),
      b.table('stock').delete('r100'),
      engine === 'columns' ? a.table('stock').update('r200', { note: 'from a' }) : a.table('stock').editText('r200', 'note', { index: 0, insert: 'from a' }),
    ])
    const round = await sync(a, b)
    expect(await rowsOf(a)).toEqual(await rowsOf(b))
    expect(await digests(a)).toEqual(await digests(b))
    expect(await a.table('stock').get('r3')).toMatchObject({ qty: 17 })
    expect(await a.table('stock').get('r100')).toBeNull()
    expect(await b.table('stock').get('r200')).toMatchObject({ note: 'from a' })
    // Only the rows that differ travel: 15 + 10 + 1 fetched, 20 + 10 + 1 sent (both-sided rows once each way).
    // Automerge cannot tell what a replica with heads it has never seen lacks, so b sends r200
    // (edited only on a) whole; Yjs state vectors say exactly.
    expect(round.rowsReceived).toBe(15 + 10 + 1 + (engine === 'automerge' ? 1 : 0))
    expect(round.rowsSent).toBe(20 + 10 + 1)
    const again = await sync(a, b)
    expect(again.wire.requests).toEqual(['hello'])
  })

  it('when most rows of a partition differ, trades both sides\' rows whole instead of row by row', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock(engine))
    await Promise.all(Array.from({ length: 600 }, (_, i) => a.table('stock').put(`r${i}`, { store: '1', sku: `s${i}`, qty: 10 })))
    await sync(b, a)
    // a moves on with most rows while b was away; b changed a few of its own meanwhile.
    await Promise.all([
      ...Array.from({ length: 500 }, (_, i) => a.table('stock').increment(`r${i}`, 'qty', 1)),
      ...Array.from({ length: 20 }, (_, i) => b.table('stock').update(`r${580 + i}`, { sku: `b${i}` })),
    ])
    const round = await sync(b, a)
    expect(await rowsOf(a)).toEqual(await rowsOf(b))
    expect(await digests(a)).toEqual(await digests(b))
    expect(await a.table('stock').get('r599')).toMatchObject({ sku: 'b19' })
    expect(await b.table('stock').get('r0')).toMatchObject({ qty: 11 })
    expect(round.wire.requests).toContain('range')
    expect(round.wire.requests).toContain('push')
    expect(round.wire.requests).not.toContain('fetch')
    expect(round.wire.requests).not.toContain('leaves')
    expect((await sync(b, a)).wire.requests).toEqual(['hello'])
    // b only behind: a's rows come, and nothing goes back.
    await Promise.all(Array.from({ length: 500 }, (_, i) => a.table('stock').increment(`r${i + 100}`, 'qty', 1)))
    const behind = await sync(b, a)
    expect(await digests(a)).toEqual(await digests(b))
    expect(behind.wire.requests).toContain('range')
    expect(behind.wire.requests).not.toContain('push')
    expect(behind.rowsSent).toBe(0)
    // a, the one ahead, starts the round: one small page of b's rows changes nothing at a, so a's
    // rows go first and the level is compared again; b's rows are not fetched beyond that page.
    await Promise.all(Array.from({ length: 500 }, (_, i) => a.table('stock').increment(`r${i + 50}`, 'qty', 1)))
    const ahead = await sync(a, b)
    expect(await digests(a)).toEqual(await digests(b))
    expect(await rowsOf(a)).toEqual(await rowsOf(b))
    expect(ahead.wire.requests.filter((r) => r === 'range')).toHaveLength(1)
    expect(ahead.changedHere).toBe(0)
    expect(ahead.rowsReceived).toBeLessThan(200)
    expect(ahead.rowsSent).toBeGreaterThanOrEqual(500)
    expect((await sync(a, b)).wire.requests).toEqual(['hello'])
  })

  it('partial replication: partitions the other side does not carry are neither sent nor asked for', async () => {
    const hq = await store()
    const shop = await store()
    await hq.defineTable(stock(engine))
    await Promise.all(Array.from({ length: 90 }, (_, i) => hq.table('stock').put(`r${i}`, { store: String(i % 3), qty: 1 })))
    await sync(shop, hq, { stock: ['1'] }, {})
    expect((await shop.status()).tables[0]!.partitions.map((p) => [p.partition, p.rows])).toEqual([['1', 30]])
    // The shop writes its own partition; HQ (carrying everything) gets it when it initiates too.
    await shop.table('stock').put('new', { store: '1', qty: 5 })
    await sync(hq, shop, {}, { stock: ['1'] })
    expect(await hq.table('stock').get('new')).toMatchObject({ qty: 5 })
    expect((await shop.status()).tables[0]!.partitions.map((p) => p.partition)).toEqual(['1'])
  })

  it('a push of a partition the responder does not carry is refused, nothing stored', async () => {
    const hq = await store()
    const shop = await store()
    await hq.defineTable(stock(engine))
    await shop.defineTable(stock(engine))
    await hq.table('stock').put('x', { store: '2', qty: 1 })
    const delta = (await hq.replication().encodedRows('stock', '2', ['x']))[0]
    const res = await answer(new StoreReplica(shop.replication(), { stock: ['1'] }), { type: 'push', table: 'stock', partition: '2', rows: [{ key: 'x', bytes: delta! }] }, 'hq')
    expect(res).toMatchObject({ type: 'error', code: 'NOT_CARRIED' })
    expect(shop.replication().partitions('stock')).toEqual([])
  })

  it('an interrupted initial load resumes where the rows already are', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock(engine))
    await Promise.all(Array.from({ length: 800 }, (_, i) => a.table('stock').put(`r${i}`, { store: '1', qty: i })))
    const inner = wire(new StoreReplica(a.replication()))
    let ranges = 0
    const failing: Ask = async (req) => {
      if (req.type === 'range' && ++ranges === 4) throw new Error('connection reset')
      return inner.ask(req)
    }
    const stats = newRoundStats()
    await expect(reconcile(new StoreReplica(b.replication()), failing, { from: 'a', pageBytes: 8 * 1024, stats })).rejects.toThrow('connection reset')
    const partial = b.replication().rowCount('stock')
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(800)
    // The caller's figures say what the failed round brought: those rows are stored.
    expect(stats.rowsReceived).toBeGreaterThanOrEqual(partial)
    expect(stats.changedHere).toBeGreaterThanOrEqual(partial)
    const resumed = await sync(b, a)
    expect(b.replication().rowCount('stock')).toBe(800)
    expect(resumed.rowsReceived).toBeLessThan(800 - partial / 2) // not a full reload
    expect(await digests(b)).toEqual(await digests(a))
  })
})

describe('one source per partition', () => {
  it('a peer rounding with two sources at once takes each missing partition from one of them', async () => {
    const [a, b, c] = [await store(), await store(), await store()]
    await a.defineTable(stock('yjs'))
    await Promise.all(Array.from({ length: 600 }, (_, i) => a.table('stock').put(`r${i}`, { store: String(i % 3), qty: i })))
    await sync(b, a)
    expect(await digests(b)).toEqual(await digests(a))
    // C is empty; its rounds with A and with B run at the same time, sharing one claim registry
    // (as SyncService does for every round, outbound and inbound).
    const claimed = new Set<string>()
    const claim = (table: string, partition: string): (() => void) | null => {
      const id = `${table}/${partition}`
      if (claimed.has(id)) return null
      claimed.add(id)
      return () => claimed.delete(id)
    }
    const slow = (remote: Shoal): Ask => {
      const w = wire(new StoreReplica(remote.replication()))
      return async (req) => {
        await new Promise((resolve) => setTimeout(resolve, 5))
        return w.ask(req)
      }
    }
    const replica = new StoreReplica(c.replication())
    const [fromA, fromB] = await Promise.all([reconcile(replica, slow(a), { from: 'a', claim, pageBytes: 4096 }), reconcile(replica, slow(b), { from: 'b', claim, pageBytes: 4096 })])
    expect(fromA.errors).toEqual([])
    expect(fromB.errors).toEqual([])
    // Every stock partition came from one source only; the other round left it alone.
    expect(fromA.rowsReceived + fromB.rowsReceived).toBeLessThan(600 + 10)
    expect(fromA.busyElsewhere + fromB.busyElsewhere).toBeGreaterThan(0)
    expect(claimed.size).toBe(0)
    // A later round brings whatever was left.
    await sync(c, a)
    expect(await digests(c)).toEqual(await digests(a))
  })

  it('a push for a partition another round is bringing here is answered BUSY_ELSEWHERE, and the pusher leaves it for later', async () => {
    const [a, b] = [await store(), await store()]
    await a.defineTable(stock('yjs'))
    await b.defineTable(stock('yjs'))
    await a.table('stock').put('r1', { store: '1', qty: 1 })
    const refusing: Ask = async (req) => {
      const frame = decodeRequest(encodeRequest(req))
      return decodeResponse(encodeResponse(await answer(new StoreReplica(b.replication()), frame, 'a', () => false)), req.type)
    }
    const stats = await reconcile(new StoreReplica(a.replication()), refusing, { from: 'b' })
    expect(stats.errors).toEqual([])
    // (the catalog row differs too: both defined the table)
    expect(stats.busyElsewhere).toBeGreaterThanOrEqual(1)
    expect(b.replication().rowCount('stock')).toBe(0)
  })
})

describe('anti-entropy convergence (property)', () => {
  const seed = process.env.SHOAL_FC_SEED === undefined ? undefined : Number(process.env.SHOAL_FC_SEED)
  const numRuns = Number(process.env.SHOAL_FC_RUNS ?? 8)

  it('any divergent histories on three replicas converge after pairwise rounds', async () => {
    const op = fc.record({
      replica: fc.integer({ min: 0, max: 2 }),
      key: fc.integer({ min: 0, max: 30 }),
      kind: fc.constantFrom('put', 'inc', 'del', 'text'),
      n: fc.integer({ min: 1, max: 5 }),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), fc.constantFrom('yjs', 'automerge', 'columns'), async (ops, engine) => {
        const dbs = [await store(), await store(), await store()]
        await dbs[0]!.defineTable(stock(engine))
        await sync(dbs[1]!, dbs[0]!)
        await sync(dbs[2]!, dbs[0]!)
        for (const o of ops) {
          const t = dbs[o.replica]!.table('stock')
          const key = `k${o.key}`
          const exists = (await t.get(key)) !== null
          if (o.kind === 'put' || !exists) await t.put(key, { store: String(o.key % 2), sku: `v${o.n}` })
          else if (o.kind === 'inc') await t.increment(key, 'qty', o.n)
          else if (o.kind === 'del') await t.delete(key)
          else if (engine === 'columns') await t.update(key, { note: 'x'.repeat(o.n) })
          else await t.editText(key, 'note', { index: 0, insert: 'x'.repeat(o.n) })
        }
        // A ring of rounds twice over reaches everyone.
        for (let i = 0; i < 2; i++) for (const [x, y] of [[0, 1], [1, 2], [2, 0]] as const) await sync(dbs[x]!, dbs[y]!)
        await expectConvergedAndClose(dbs)
      }),
      { numRuns, ...(seed === undefined ? {} : { seed }) },
    )
  }, 120_000)
})

describe('partition roots are paged', () => {
  it('a peer holding more partitions than fit in one frame is reconciled in full', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock('yjs'))
    const partitions = MAX_ROOTS_PER_FRAME + 10
    await Promise.all(Array.from({ length: partitions }, (_, i) => a.table('stock').put(`k${i}`, { store: `s${i}`, sku: 'x' })))
    const w = wire(new StoreReplica(a.replication()))
    const stats = await reconcile(new StoreReplica(b.replication()), w.ask, { from: 'a' })
    expect(stats.errors).toEqual([])
    expect(w.requests.filter((t) => t === 'roots')).toHaveLength(1)
    expect(w.bytes.in / w.requests.length).toBeLessThan(MAX_FRAME_BYTES)
    expect(await digests(b)).toEqual(await digests(a))
  })

  it('a peer whose pages do not move forward ends the round with a protocol error', async () => {
    const a = await store()
    const b = await store()
    await a.defineTable(stock('yjs'))
    await a.table('stock').put('k', { store: 's', sku: 'x' })
    const honest = wire(new StoreReplica(a.replication()))
    const root = { table: 'stock', partition: 's', root: new Uint8Array(16).fill(1), rows: 1 }
    const looping: Ask = async (req) => {
      if (req.type === 'hello') return { type: 'hello', carries: {}, roots: [root], next: { table: 'stock', partition: 's' } }
      if (req.type === 'roots') return { type: 'roots', roots: [root], next: { table: 'stock', partition: 's' } }
      return honest.ask(req)
    }
    await expect(reconcile(new StoreReplica(b.replication()), looping, { from: 'a' })).rejects.toThrow(/does not move forward/)
  })
})

describe('when to trade whole rows (mostRowsDiffer)', () => {
  it('trades where most rows differ, descends where few do', () => {
    // w5 of bench:peers: 1,250 rows a partition, every one updated.
    expect(mostRowsDiffer(1250, 256, 256)).toBe(true)
    expect(mostRowsDiffer(1250, 4096, 1080)).toBe(true)
    // bench:mesh anti-entropy: 1k of 100k updated.
    expect(mostRowsDiffer(100_000, 65_536, 1000)).toBe(false)
    expect(mostRowsDiffer(100_000, 4096, 940)).toBe(false)
    // A few differing rows among 400, at every level.
    expect(mostRowsDiffer(446, 256, 52)).toBe(false)
    expect(mostRowsDiffer(446, 4096, 57)).toBe(false)
    // Too few nodes to judge, or nodes too big to say anything.
    expect(mostRowsDiffer(12, 16, 12)).toBe(false)
    expect(mostRowsDiffer(100_000, 16, 16)).toBe(false)
  })
})
