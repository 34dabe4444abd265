import { encode as cbor } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Shoal, type EngineName, type TableSchema } from '../../src/index.js'
import { answer, reconcile, type Ask, type RoundStats } from '../../src/sync/reconciler.js'
import { StoreReplica } from '../../src/sync/store-replica.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type SyncRequest, type SyncResponse } from '../../src/sync/sync-messages.js'
import { digests, expectConvergedAndClose, rowsOf, store } from '../helpers/stores.js'

/*
 * Anti-entropy by the change feed (protocol 1.2.0) between real stores, wired request → answer in
 * process through the codec. Each store is named by its actor, as peers are by their ids.
 */

const stock = (engine: EngineName): TableSchema => ({
  name: 'stock',
  primaryKey: 'id',
  partitionBy: 'store',
  engine,
  columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter' },
})

const nameOf = (db: Shoal): string => db.replication().actor

interface Round extends RoundStats {
  requests: SyncRequest['type'][]
  bytes: number
}

/** One round from `a` (initiator) with `b`; `tamper` may rewrite b's answers (a lying peer). */
async function round(a: Shoal, b: Shoal, options: { feed?: boolean; tamper?: (res: SyncResponse) => SyncResponse } = {}): Promise<Round> {
  const requests: SyncRequest['type'][] = []
  let bytes = 0
  const remote = new StoreReplica(b.replication())
  const ask: Ask = async (req) => {
    const frame = encodeRequest(req)
    requests.push(req.type)
    const res = options.tamper === undefined ? await answer(remote, decodeRequest(frame), nameOf(a)) : options.tamper(await answer(remote, decodeRequest(frame), nameOf(a)))
    const out = encodeResponse(res)
    bytes += frame.length + out.length
    return decodeResponse(out, req.type)
  }
  const stats = await reconcile(new StoreReplica(a.replication()), ask, { from: nameOf(b), feed: options.feed ?? true })
  expect(stats.errors).toEqual([])
  return { ...stats, requests, bytes }
}

/** Two stores holding the same 1,000 rows in partition '1', each having seen the other's state. */
async function pairInSync(engine: EngineName): Promise<[Shoal, Shoal]> {
  const a = await store()
  const b = await store()
  await a.defineTable(stock(engine))
  await Promise.all(Array.from({ length: 1000 }, (_, i) => a.table('stock').put(`r${i}`, { store: '1', sku: `s${i}`, qty: 10 })))
  await round(b, a)
  // In sync: the hello's equal roots mark each side's position at the other.
  const quiet = await round(b, a)
  expect(quiet.requests).toEqual(['hello'])
  return [a, b]
}

describe.each(['yjs', 'automerge', 'columns'] as const)('anti-entropy by the change feed (%s)', (engine) => {
  it('reconciles what changed since the last round, both ways, without walking the tree', async () => {
    const [a, b] = await pairInSync(engine)
    await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => a.table('stock').update(`r${i * 7}`, { sku: `a${i}` })),
      ...Array.from({ length: 5 }, (_, i) => a.table('stock').put(`new-a${i}`, { store: '1', qty: 1 })),
      ...Array.from({ length: 8 }, (_, i) => b.table('stock').increment(`r${500 + i}`, 'qty', 2)),
      // Both sides change the same row.
      a.table('stock').increment('r999', 'qty', 1),
      b.table('stock').increment('r999', 'qty', 5),
      b.table('stock').delete('r998'),
    ])
    const r = await round(b, a)
    expect(r.byFeed).toBe(1)
    expect(r.requests).toEqual(['hello', ...r.requests.slice(1).filter((t) => t !== 'children' && t !== 'leaves' && t !== 'range')])
    expect(r.requests).toContain('changes')
    expect(r.requests).toContain('settle')
    expect(await rowsOf(a)).toEqual(await rowsOf(b))
    expect(await digests(a)).toEqual(await digests(b))
    expect(await a.table('stock').get('r999')).toMatchObject({ qty: 16 })
    expect(await a.table('stock').get('r998')).toBeNull()
    expect(await b.table('stock').get('r14')).toMatchObject({ sku: 'a2' })
    // Only the changed rows travelled: 12 + 5 + 1 from a, 8 + 1 + 1 to it. (Automerge cannot tell
    // what a replica with heads it has never seen lacks: a answers b's 10 rows whole as well.)
    expect(r.rowsReceived).toBeLessThanOrEqual(12 + 5 + 1 + (engine === 'automerge' ? 10 : 0))
    expect(r.rowsSent).toBeLessThanOrEqual(8 + 1 + 1)
    // The settle marked both positions: the next change goes by the feed again, from either side.
    await a.table('stock').update('r1', { sku: 'again' })
    const next = await round(a, b)
    expect(next.byFeed).toBe(1)
    expect(next.requests).not.toContain('children')
    expect(await digests(a)).toEqual(await digests(b))
    expect((await round(a, b)).requests).toEqual(['hello'])
  })

  it('falls back to the digest tree where the feed cannot tell: no mark yet, too many changes, or a peer without it', async () => {
    const [a, b] = await pairInSync(engine)
    // Too many: more than an eighth of the partition changed on a.
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.table('stock').increment(`r${i}`, 'qty', 1)))
    const many = await round(b, a)
    expect(many.byFeed).toBe(0)
    expect(many.requests).toContain('children')
    expect(await digests(a)).toEqual(await digests(b))
    // A peer that does not speak the feed (protocol 1.1.0): the tree, as before.
    await a.table('stock').update('r5', { sku: 'old protocol' })
    const old = await round(b, a, { feed: false })
    expect(old.requests).not.toContain('changes')
    expect(old.requests).toContain('leaves')
    expect(await digests(a)).toEqual(await digests(b))
    // A third store that never met a: no mark, the tree.
    const c = await store()
    await round(c, b)
    await a.table('stock').update('r6', { sku: 'for c' })
    const first = await round(c, a)
    expect(first.byFeed).toBe(0)
    expect(await digests(a)).toEqual(await digests(c))
  })
})

describe('a peer lying in its feed answers', () => {
  it('a changes answer leaving rows out is caught at settle: the tree repairs the rest', async () => {
    const [a, b] = await pairInSync('columns')
    await Promise.all(Array.from({ length: 10 }, (_, i) => a.table('stock').update(`r${i * 11}`, { sku: `hidden${i}` })))
    const r = await round(b, a, { tamper: (res) => (res.type === 'changes' ? { ...res, rows: res.rows.slice(0, 3) } : res) })
    expect(r.byFeed).toBe(0)
    expect(r.feedMissed).toBe(1)
    expect(r.requests).toContain('settle')
    expect(r.requests).toContain('leaves')
    expect(await rowsOf(a)).toEqual(await rowsOf(b))
    expect(await digests(a)).toEqual(await digests(b))
  })

  it('an answer listing a row twice, rows not asked for, or too many is a protocol error for that partition only', async () => {
    const [a, b] = await pairInSync('columns')
    await a.table('stock').update('r1', { sku: 'x' })
    const remote = new StoreReplica(a.replication())
    const bad = async (rewrite: (res: Extract<SyncResponse, { type: 'changes' }>) => SyncResponse): Promise<RoundStats> => {
      const ask: Ask = async (req) => {
        const res = await answer(remote, decodeRequest(encodeRequest(req)), nameOf(b))
        return decodeResponse(encodeResponse(res.type === 'changes' ? rewrite(res) : res), req.type)
      }
      return reconcile(new StoreReplica(b.replication()), ask, { from: nameOf(a), feed: true })
    }
    const twice = await bad((res) => ({ ...res, rows: [...res.rows, ...res.rows] }))
    expect(twice.errors.join()).toMatch(/twice/)
    const flood = await bad((res) => ({ ...res, rows: Array.from({ length: 200 }, (_, i) => ({ key: `x${i}`, hash: new Uint8Array(8) })) }))
    expect(flood.errors.join()).toMatch(/changed rows; at most/)
    // Nothing was lost: an honest round still brings b in line.
    await round(b, a)
    expect(await digests(a)).toEqual(await digests(b))
  })

  it('refuses malformed feed messages with an error naming what is wrong', () => {
    const frame = (fields: unknown[]): Uint8Array => cbor(fields)
    expect(() => decodeRequest(frame([1, 'changes', 'stock', '1', 'not-hex', 0, 10, []]))).toThrow(/epoch/)
    expect(() => decodeRequest(frame([1, 'changes', 'stock', '1', '0123456789abcdef', -1, 10, []]))).toThrow(/position/)
    expect(() => decodeRequest(frame([1, 'changes', 'stock', '1', '0123456789abcdef', 0, 0, []]))).toThrow(/limit/)
    expect(() => decodeRequest(frame([1, 'changes', 'stock', '1', '0123456789abcdef', 0, 10, Array.from({ length: 5000 }, (_, i) => `k${i}`)]))).toThrow(/over the limit/)
    expect(() => decodeRequest(frame([1, 'settle', 'stock', '1', new Uint8Array(3), '0123456789abcdef', 0]))).toThrow(/digest root/)
    expect(() => decodeRequest(frame([1, 'hello', {}, [], null, ['0123456789abcdef', [1]]]))).toThrow(/1 feed positions for 0 partitions/)
    expect(() => decodeResponse(frame([1, 'changes', 'maybe', 0, []]), 'changes')).toThrow(/status/)
    expect(() => decodeResponse(frame([1, 'hello', {}, [], null, ['0123456789abcdef', [], [null]]]), 'hello')).toThrow(/held feed positions/)
  })
})

describe('anti-entropy with the change feed converges (property)', () => {
  const seed = process.env.SHOAL_FC_SEED === undefined ? undefined : Number(process.env.SHOAL_FC_SEED)
  const numRuns = Number(process.env.SHOAL_FC_RUNS ?? 8)

  it('any interleaving of writes and rounds on three replicas ends with them equal', async () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constantFrom('put', 'inc', 'del'), replica: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: 0, max: 40 }), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('round' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 2 }), feed: fc.boolean() }),
    )
    let byFeed = 0
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 50 }), fc.constantFrom('yjs', 'automerge', 'columns'), async (steps, engine) => {
        const dbs = [await store(), await store(), await store()]
        await dbs[0]!.defineTable(stock(engine))
        await Promise.all(Array.from({ length: 60 }, (_, i) => dbs[0]!.table('stock').put(`k${i}`, { store: String(i % 2), qty: 1 })))
        for (const [x, y] of [[1, 0], [2, 0], [1, 0], [2, 0]] as const) await round(dbs[x]!, dbs[y]!)
        for (const s of steps) {
          if (s.kind === 'round') {
            if (s.from === s.to) continue
            const r = await round(dbs[s.from]!, dbs[s.to]!, { feed: s.feed })
            // Honest peers, nothing written during the round: the feed alone is right whenever it is used.
            expect(r.feedMissed).toBe(0)
            byFeed += r.byFeed
            continue
          }
          const t = dbs[s.replica]!.table('stock')
          const key = `k${s.key}`
          if (s.kind === 'put' || (await t.get(key)) === null) await t.put(key, { store: String(s.key % 2), sku: `v${s.n}` })
          else if (s.kind === 'inc') await t.increment(key, 'qty', s.n)
          else await t.delete(key)
        }
        for (let i = 0; i < 2; i++) {
          for (const [x, y] of [[0, 1], [1, 2], [2, 0]] as const) {
            const r = await round(dbs[x]!, dbs[y]!)
            expect(r.feedMissed).toBe(0)
            byFeed += r.byFeed
          }
        }
        await expectConvergedAndClose(dbs)
      }),
      { numRuns, ...(seed === undefined ? {} : { seed }) },
    )
    // The schedules exercised the feed, not only the tree.
    expect(byFeed).toBeGreaterThan(0)
  }, 180_000)
})
