import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FEED_MARKS_KEPT_PEERS, FEED_MIN_KEYS } from '../../src/constants.js'
import { Shoal, type TableSchema } from '../../src/index.js'
import { callbackLogger } from '../../src/log.js'
import { tempDir } from '../helpers/tempdir.js'

const stock: TableSchema = { name: 'stock', primaryKey: 'sku', partitionBy: 'store', engine: 'columns', columns: { sku: 'string', store: 'string', qty: 'number' } }

describe('the change feed', () => {
  it('lists each row changed after a position once, per partition, and keeps its positions and epoch across a reopen', async () => {
    const dir = await tempDir()
    let db = await Shoal.open({ dir })
    await db.defineTable(stock)
    const t = db.table('stock')
    const r = db.replication()
    expect(r.feedSeq('stock', '1')).toBe(0)
    await t.put('A', { store: '1', qty: 1 })
    const start = r.feedSeq('stock', '1')
    expect(start).toBe(1)
    await t.put('B', { store: '1', qty: 1 })
    await t.update('A', { qty: 2 })
    await t.put('C', { store: '2', qty: 1 })
    expect(r.feedSeq('stock', '1')).toBe(3)
    expect(r.feedSeq('stock', '2')).toBe(1)
    const since = await r.changedSince('stock', '1', start, 100)
    expect(since).toEqual({ seq: 3, keys: expect.arrayContaining(['A', 'B']) })
    expect((since as { keys: string[] }).keys).toHaveLength(2)
    expect(await r.changedSince('stock', '1', 3, 100)).toEqual({ seq: 3, keys: [] })
    expect(await r.changedSince('stock', '1', 0, 100)).toEqual({ seq: 3, keys: expect.arrayContaining(['A', 'B']) })
    expect(await r.changedSince('stock', '1', 0, 1)).toBe('too-many')
    // A position this feed never reached: another folder's, or a peer's lie.
    expect(await r.changedSince('stock', '1', 4, 100)).toBe('unknown')
    const epoch = r.feedEpoch()
    expect(epoch).toMatch(/^[0-9a-f]{16}$/)
    await r.setFeedMark('peer-x', 'stock', '1', { epoch: 'aaaaaaaaaaaaaaaa', seq: 7 })
    await db.close()

    db = await Shoal.open({ dir })
    const again = db.replication()
    expect(again.feedEpoch()).toBe(epoch)
    expect(again.feedSeq('stock', '1')).toBe(3)
    expect(await again.changedSince('stock', '1', 1, 100)).toEqual({ seq: 3, keys: expect.arrayContaining(['A', 'B']) })
    expect(await again.feedMark('peer-x', 'stock', '1')).toEqual({ epoch: 'aaaaaaaaaaaaaaaa', seq: 7 })
    expect(await again.feedMark('peer-x', 'stock', '2')).toBeNull()
    expect(await again.feedMark('peer-y', 'stock', '1')).toBeNull()
    await db.table('stock').put('D', { store: '1', qty: 1 })
    expect(await again.changedSince('stock', '1', 3, 100)).toEqual({ seq: 4, keys: ['D'] })
    expect((await again.rowHashes('stock', '1', ['D', 'nope'])).map((h) => h?.length ?? null)).toEqual([16, null])
    await db.close()
    // Another folder is another feed.
    const other = await Shoal.open({ dir: await tempDir() })
    expect(other.replication().feedEpoch()).not.toBe(epoch)
    await other.close()
  })

  it('is bounded: past as many listed keys as the partition has rows (at least FEED_MIN_KEYS) the oldest entries go, and asking from before them says unknown', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    await db.defineTable(stock)
    const t = db.table('stock')
    const r = db.replication()
    // 10 hot rows written over and over: the bound is FEED_MIN_KEYS.
    for (let b = 0; b < Math.floor(FEED_MIN_KEYS / 10) * 2; b++) await Promise.all(Array.from({ length: 10 }, (_, i) => t.put(`hot${i}`, { store: '1', qty: b })))
    let seq = r.feedSeq('stock', '1')
    expect(await r.changedSince('stock', '1', 0, 100_000)).toBe('unknown')
    expect(await r.changedSince('stock', '1', seq - Math.floor(FEED_MIN_KEYS / 10) + 1, 100_000)).toEqual({ seq, keys: expect.arrayContaining(['hot0', 'hot9']) })
    // A big partition keeps as many keys as it has rows.
    const rows = FEED_MIN_KEYS * 3
    await Promise.all(Array.from({ length: rows }, (_, i) => t.put(`k${i}`, { store: '1', qty: 0 })))
    const loaded = r.feedSeq('stock', '1')
    await Promise.all(Array.from({ length: rows }, (_, i) => t.put(`k${i}`, { store: '1', qty: 1 })))
    seq = r.feedSeq('stock', '1')
    const recent = await r.changedSince('stock', '1', loaded, 100_000)
    expect(recent).not.toBe('unknown')
    expect((recent as { keys: string[] }).keys).toHaveLength(rows)
    expect(await r.changedSince('stock', '1', loaded - 1, 100_000)).toBe('unknown')
    expect(await db.check()).toMatchObject({ problems: [] })
    await db.close()
  }, 60_000)

  it('one-row commits do not each read the feed back: trimming runs once per quarter of the bound', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    await db.defineTable(stock)
    const t = db.table('stock')
    const feed = (db as unknown as { store: { core: { levels: { feed: { iterator: (...a: unknown[]) => unknown } } } } }).store.core.levels.feed
    const iterator = feed.iterator.bind(feed)
    let reads = 0
    feed.iterator = (...a: unknown[]) => {
      reads++
      return iterator(...a)
    }
    const commits = 2 * FEED_MIN_KEYS
    for (let i = 0; i < commits; i++) await t.put('only', { store: '1', qty: i })
    // Over the bound after 1.25 × FEED_MIN_KEYS commits, then every quarter of it.
    expect(reads).toBeGreaterThanOrEqual(1)
    expect(reads).toBeLessThanOrEqual(Math.ceil((commits - 1.25 * FEED_MIN_KEYS) / (FEED_MIN_KEYS / 4)) + 1)
    const seq = db.replication().feedSeq('stock', '1')
    expect(await db.replication().changedSince('stock', '1', seq - FEED_MIN_KEYS, 10)).toEqual({ seq, keys: ['only'] })
    await db.close()
  }, 60_000)

  it('keeps the marks of the FEED_MARKS_KEPT_PEERS most recently marked peers on disk and drops older ones, across a reopen', async () => {
    const dir = await tempDir()
    let db = await Shoal.open({ dir })
    await db.defineTable(stock)
    let r = db.replication()
    const mark = (seq: number) => ({ epoch: 'aaaaaaaaaaaaaaaa', seq })
    const peers = Array.from({ length: FEED_MARKS_KEPT_PEERS }, (_, i) => `peer-${i}`)
    for (const [i, peer] of peers.entries()) {
      await r.setFeedMark(peer, 'stock', '1', mark(i))
      await r.setFeedMark(peer, 'stock', '2', mark(i))
    }
    // peer-0 marks again: now peer-1 is the least recent, and the first to go.
    await r.setFeedMark('peer-0', 'stock', '1', mark(99))
    await r.setFeedMark('newcomer-a', 'stock', '1', mark(1))
    expect(await r.feedMark('peer-1', 'stock', '1')).toBeNull()
    expect(await r.feedMark('peer-1', 'stock', '2')).toBeNull()
    expect(await r.feedMark('peer-0', 'stock', '1')).toEqual(mark(99))
    expect(await r.feedMark('peer-0', 'stock', '2')).toEqual(mark(0))
    await db.close()

    // After a reopen the order holds: peer-2 goes next.
    db = await Shoal.open({ dir })
    r = db.replication()
    await r.setFeedMark('newcomer-b', 'stock', '1', mark(1))
    expect(await r.feedMark('peer-2', 'stock', '1')).toBeNull()
    expect(await r.feedMark('peer-3', 'stock', '1')).toEqual(mark(3))
    expect(await r.feedMark('newcomer-a', 'stock', '1')).toEqual(mark(1))
    await db.close()

    const { ClassicLevel } = await import('classic-level')
    const raw = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
    const meta = raw.sublevel<string, string>('meta', { valueEncoding: 'utf8' })
    const marked = new Set<string>()
    let marks = 0
    for await (const key of meta.keys({ gte: 'mark\u0000', lt: 'mark\u0001' })) {
      marks++
      marked.add(key.split('\u0000')[1]!)
    }
    const listed = await meta.keys({ gte: 'markedPeer\u0000', lt: 'markedPeer\u0001' }).all()
    await raw.close()
    expect(marked.size).toBe(FEED_MARKS_KEPT_PEERS)
    expect(listed).toHaveLength(FEED_MARKS_KEPT_PEERS)
    expect(marked.has('peer-1') || marked.has('peer-2')).toBe(false)
    // Each kept peer's marks are all there: peer-0, peer-3… two each, the newcomers one each.
    expect(marks).toBe(2 * (FEED_MARKS_KEPT_PEERS - 2) + 2)
  }, 60_000)

  it('a damaged feed position costs only the shortcut: the store opens, says so, and starts a new epoch', async () => {
    const dir = await tempDir()
    let db = await Shoal.open({ dir })
    await db.defineTable(stock)
    await db.table('stock').put('A', { store: '1', qty: 1 })
    const epoch = db.replication().feedEpoch()
    await db.close()
    const { ClassicLevel } = await import('classic-level')
    const raw = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
    const meta = raw.sublevel<string, string>('meta', { valueEncoding: 'utf8' })
    await meta.put('feed\u0000stock\u00001', 'garbage 9 x')
    await raw.close()
    const warnings: string[] = []
    db = await Shoal.open({ dir, logger: callbackLogger((level, m) => level === 'warn' && warnings.push(m)) })
    expect(warnings.join()).toMatch(/change feed's position of partition "stock\/1" was damaged/)
    const r = db.replication()
    expect(r.feedEpoch()).not.toBe(epoch)
    expect(r.feedSeq('stock', '1')).toBe(0)
    expect(await db.table('stock').get('A')).toMatchObject({ qty: 1 })
    await db.table('stock').put('B', { store: '1', qty: 1 })
    expect(await r.changedSince('stock', '1', 0, 10)).toEqual({ seq: 1, keys: ['B'] })
    await db.close()
  })

  it('answers exactly the rows changed after any position it still holds (property)', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    await db.defineTable(stock)
    const t = db.table('stock')
    const r = db.replication()
    // A model: per position, the keys its commit changed.
    const history: string[][] = []
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }), fc.nat(), async (commits, pick) => {
        for (const keys of commits) {
          const before = r.feedSeq('stock', '1')
          // One group commit: concurrent puts of distinct values.
          await Promise.all([...new Set(keys)].map((k) => t.put(`k${k}`, { store: '1', qty: history.length * 100 + k })))
          const after = r.feedSeq('stock', '1')
          for (let s = before; s < after; s++) history.push([])
          history[after - 1] = [...new Set([...(history[after - 1] ?? []), ...keys.map((k) => `k${k}`)])]
        }
        const seq = r.feedSeq('stock', '1')
        expect(seq).toBe(history.length)
        const from = pick % (seq + 1)
        const answer = await r.changedSince('stock', '1', from, 1000)
        const expected = new Set(history.slice(from).flat())
        expect(answer).not.toBe('unknown')
        expect(new Set((answer as { keys: string[] }).keys)).toEqual(expected)
      }),
      { numRuns: 20 },
    )
    await db.close()
  })
})
