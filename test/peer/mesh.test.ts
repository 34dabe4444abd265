import { lpStream } from '@libp2p/utils'
import { callbackLogger } from '../../src/log.js'
import { encode } from 'cborg'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseConfig, type PeerConfig } from '../../src/config.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { Peer } from '../../src/peer/peer.js'
import { decodeResponse, encodeRequest, MAX_FRAME_BYTES, SYNC_PROTOCOL, SYNC_VERSION } from '../../src/sync/sync-messages.js'
import { topicFor } from '../../src/sync/gossip.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * Real peers (libp2p over TCP on 127.0.0.1, LevelDB stores in temp folders): gossip and
 * anti-entropy together, as `shoal start` runs them.
 */

const TABLES = [
  { name: 'catalog', primaryKey: 'sku', columns: { sku: 'string', name: 'string', price: 'number' } },
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter' } },
  { name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', amount: 'number' } },
]

interface Running {
  peer: Peer
  logs: string[]
  dir: string
}

const running: Running[] = []
const raw: ShoalNode[] = []

afterEach(async () => {
  for (const r of running.splice(0)) await r.peer.stop()
  for (const n of raw.splice(0)) await n.stop()
})

async function start(options: { dir?: string; bootstrap?: string[]; carries?: Record<string, string[]>; tables?: unknown[]; intervalMs?: number; deflate?: boolean } = {}): Promise<Running> {
  const dir = options.dir ?? (await tempDir())
  const config: PeerConfig = {
    ...parseConfig({ tables: options.tables ?? TABLES, carries: options.carries ?? {}, open: true }, 'test'),
    data: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: options.bootstrap ?? [],
    mdns: false,
    http: null,
  }
  const logs: string[] = []
  const peer = await Peer.start(config, {
    logger: callbackLogger((_level, m) => logs.push(m)),
    net: { discoveryIntervalMs: 1_000, redial: { minDelayMs: 200, maxDelayMs: 1_000 } },
    sync: { intervalMs: options.intervalMs ?? 0, connectDelayMs: 100, ...(options.deflate === undefined ? {} : { deflate: options.deflate }) },
  })
  const r = { peer, logs, dir }
  running.push(r)
  return r
}

async function stop(r: Running): Promise<void> {
  await r.peer.stop()
  running.splice(running.indexOf(r), 1)
}

function addr(r: Running): string {
  return r.peer.node.multiaddrs()[0]!.toString()
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function partitions(r: Running, table: string): Promise<Array<[string, number, string]>> {
  const t = (await r.peer.db.status()).tables.find((x) => x.name === table)
  return (t?.partitions ?? []).map((p) => [p.partition, p.rows, p.digest])
}

describe('the mesh: real peers on 127.0.0.1', () => {
  it('three peers writing the same rows concurrently converge; counters sum exactly', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)] })
    const c = await start({ bootstrap: [addr(a)] })
    const all = [a, b, c]
    await eventually('all peers on the catalog topic', () => all.every((p) => p.peer.node.pubsub.getSubscribers(topicFor('_tables', '')).length === 2))
    await a.peer.db.table('stock').put('X', { store: '7', sku: 's', qty: 0 })
    await eventually('row X everywhere', async () => (await Promise.all(all.map((p) => p.peer.db.table('stock').get('X')))).every((r) => r !== null))
    await Promise.all(all.flatMap((p, i) => [...Array.from({ length: 20 }, () => p.peer.db.table('stock').increment('X', 'qty', i + 1)), p.peer.db.table('stock').update('X', { sku: `peer ${i}` })]))
    await eventually('equal rows with the counter summed', async () => {
      const rows = await Promise.all(all.map((p) => p.peer.db.table('stock').get('X')))
      return rows.every((r) => r!.qty === 20 * (1 + 2 + 3) && r!.sku === rows[0]!.sku)
    })
    const digests = await Promise.all(all.map((p) => partitions(p, 'stock')))
    expect(digests[1]).toEqual(digests[0])
    expect(digests[2]).toEqual(digests[0])
  })

  it('a stopped peer catches up by anti-entropy alone when it restarts', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)] })
    let c = await start({ bootstrap: [addr(a)] })
    await eventually('c connected to a', () => c.peer.node.connectedPeers().length >= 1)
    await a.peer.db.table('stock').put('before', { store: '1', qty: 1 })
    await eventually('c has the row written before it stopped', async () => (await c.peer.db.table('stock').get('before')) !== null)
    const cDir = c.dir
    await stop(c)

    await Promise.all([
      ...Array.from({ length: 200 }, (_, i) => a.peer.db.table('stock').put(`a${i}`, { store: String(i % 4), qty: i })),
      ...Array.from({ length: 100 }, (_, i) => b.peer.db.table('sales').put(`s${i}`, { store: '1', amount: i })),
      a.peer.db.table('stock').increment('before', 'qty', 41),
    ])
    await eventually('b has a’s writes by gossip', () => b.peer.db.replication().rowCount('stock') === 201)
    // And a has b's: on a loaded machine b's messages may still wait for their deflate, to be
    // published after c is back.
    await eventually('a has b’s writes by gossip', () => a.peer.db.replication().rowCount('sales') === 100)
    // Gossipsub re-offers recent messages (IHAVE) for a few heartbeats; wait until a and b no
    // longer hold any, so whatever c gains after restarting can only come by anti-entropy.
    const gossipWindowEmpty = (r: Running): boolean => {
      const mcache = (r.peer.node.pubsub as unknown as { mcache: { getGossipIDs(t: Set<string>): Map<string, Uint8Array[]> } }).mcache
      return mcache.getGossipIDs(new Set(r.peer.gossip.topics())).size === 0
    }
    await eventually('gossip windows of a and b drained', () => gossipWindowEmpty(a) && gossipWindowEmpty(b))

    c = await start({ dir: cDir, bootstrap: [addr(a)] })
    await eventually('c caught up', async () => c.peer.db.replication().rowCount('stock') === 201 && c.peer.db.replication().rowCount('sales') === 100)
    expect(await c.peer.db.table('stock').get('before')).toMatchObject({ qty: 42 })
    expect(await partitions(c, 'stock')).toEqual(await partitions(a, 'stock'))
    expect(await partitions(c, 'sales')).toEqual(await partitions(b, 'sales'))
    // Nothing was gossiped while c was down: every row it gained came by anti-entropy.
    expect(c.peer.sync.counters.rowsRepaired).toBeGreaterThanOrEqual(301)
    expect(c.peer.gossip.counters.deltasApplied).toBe(0)
    await eventually('the round is recorded in c’s status', async () => (await c.peer.status()).sync.peers.some((p) => p.lastRound?.ok === true))
  })

  it('an empty peer joining a peer with 10k rows receives them all, in pages, with progress', async () => {
    const a = await start()
    for (let i = 0; i < 10_000; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => a.peer.db.table('stock').put(`r${i + j}`, { store: String((i + j) % 5), sku: `sku-${i + j}`, qty: 1 })))
    }
    const b = await start({ tables: [] })
    const progress: number[] = []
    b.peer.sync.onProgress = (p) => progress.push(p.received)
    await b.peer.node.dial(addr(a))
    await eventually('b holds 10k rows', () => b.peer.db.replication().rowCount('stock') === 10_000, 120_000)
    expect(await partitions(b, 'stock')).toEqual(await partitions(a, 'stock'))
    expect(b.peer.db.tables().map((t) => t.name).sort()).toEqual(['catalog', 'sales', 'stock'])
    expect(progress.length).toBeGreaterThan(5)
    expect((await b.peer.db.check()).problems).toEqual([])
  }, 180_000)

  it('partial replication: a store peer never stores another store’s partition', async () => {
    const hq = await start()
    const s1 = await start({ bootstrap: [addr(hq)], carries: { stock: ['1'], sales: ['1'] } })
    const s2 = await start({ bootstrap: [addr(hq)], carries: { stock: ['2'], sales: ['2'] } })
    await eventually('stores connected to hq', () => s1.peer.node.connectedPeers().length >= 1 && s2.peer.node.connectedPeers().length >= 1)
    await Promise.all([
      hq.peer.db.table('stock').put('h1', { store: '1', qty: 1 }),
      hq.peer.db.table('stock').put('h2', { store: '2', qty: 2 }),
      hq.peer.db.table('stock').put('h3', { store: '3', qty: 3 }),
      s1.peer.db.table('sales').put('sale-1', { store: '1', amount: 10 }),
      s2.peer.db.table('sales').put('sale-2', { store: '2', amount: 20 }),
      hq.peer.db.table('catalog').put('sku-1', { name: 'Widget', price: 3 }),
    ])
    await eventually('hq has both stores’ sales', async () => (await hq.peer.db.table('sales').get('sale-1')) !== null && (await hq.peer.db.table('sales').get('sale-2')) !== null)
    await eventually('stores have their own stock and the catalog', async () =>
      (await s1.peer.db.table('stock').get('h1')) !== null && (await s2.peer.db.table('stock').get('h2')) !== null &&
      (await s1.peer.db.table('catalog').get('sku-1')) !== null && (await s2.peer.db.table('catalog').get('sku-1')) !== null,
    )
    // A full anti-entropy round each way, then look: nothing foreign arrived.
    await s1.peer.sync.syncWith(hq.peer.node.peerId)
    await hq.peer.sync.syncWith(s1.peer.node.peerId)
    await s2.peer.sync.syncWith(hq.peer.node.peerId)
    expect((await partitions(s1, 'stock')).map((p) => p[0])).toEqual(['1'])
    expect((await partitions(s1, 'sales')).map((p) => p[0])).toEqual(['1'])
    expect((await partitions(s2, 'stock')).map((p) => p[0])).toEqual(['2'])
    expect((await partitions(s2, 'sales')).map((p) => p[0])).toEqual(['2'])
    expect((await partitions(hq, 'sales')).map((p) => p[0])).toEqual(['1', '2'])
    expect(s1.peer.gossip.topics()).not.toContain(topicFor('stock', '2'))
  })

  it('a store announces its first write to a partition, so HQ (which never held it) listens from then on', async () => {
    const hq = await start()
    const s1 = await start({ bootstrap: [addr(hq)], carries: { stock: ['1'], sales: ['1'] } })
    await eventually('both know the catalog topic has the other', () => hq.peer.node.pubsub.getSubscribers(topicFor('_tables', '')).length === 1 && s1.peer.node.pubsub.getSubscribers(topicFor('_tables', '')).length === 1)
    // Gossip only: with anti-entropy stopped, nothing else can carry the rows.
    await hq.peer.sync.stop()
    await s1.peer.sync.stop()
    expect(hq.peer.gossip.topics()).not.toContain(topicFor('sales', '1'))
    await s1.peer.db.table('sales').put('first', { store: '1', amount: 5 })
    await eventually('hq listens to sales/1 and s1 knows it', () => s1.peer.node.pubsub.getSubscribers(topicFor('sales', '1')).length === 1)
    // s1 held the first sale's message until hq subscribed, so gossip alone delivers it too.
    await eventually('the first sale reaches hq by gossip', async () => (await hq.peer.db.table('sales').get('first')) !== null)
    await s1.peer.db.table('sales').put('second', { store: '1', amount: 6 })
    await eventually('the next sale reaches hq by gossip', async () => (await hq.peer.db.table('sales').get('second')) !== null)
  })

  it('a burst of writes to a new partition reaches a peer by gossip; the round the announcement asks for finds nothing left to send', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)] })
    await eventually('connected and idle', () => a.peer.sync.status().rounds > 0 && b.peer.sync.status().rounds > 0 && [a, b].every((p) => p.peer.sync.status().peers.every((x) => x.state === 'idle')))
    const roundsBefore = b.peer.sync.status().rounds
    const before = { in: b.peer.sync.counters.rowsIn, out: a.peer.sync.counters.rowsOut }
    await Promise.all(Array.from({ length: 3000 }, (_, i) => a.peer.db.table('stock').put(`r${i}`, { store: 'new', sku: `sku-${i}`, qty: 1 })))
    await eventually('b holds all rows', () => b.peer.db.replication().rowCount('stock') === 3000)
    const allIn = Date.now()
    expect(b.peer.gossip.counters.deltasApplied).toBe(3000)
    // It waits for gossip to be quiet, so it starts after the last row came in.
    await eventually('the round asked for by the announcement ran', () => b.peer.sync.status().peers.some((x) => x.state === 'idle' && Date.parse(x.lastRound?.at ?? '') >= allIn), 20_000)
    expect(b.peer.sync.status().rounds).toBeGreaterThan(roundsBefore)
    expect(b.peer.sync.counters.rowsIn - before.in).toBe(0)
    expect(a.peer.sync.counters.rowsOut - before.out).toBe(0)
    expect(await partitions(b, 'stock')).toEqual(await partitions(a, 'stock'))
  })

  it('a partition announced while nobody listens still goes out, once the wait for a subscriber is over', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)], carries: { stock: ['1'] } })
    await eventually('connected', () => a.peer.node.pubsub.getSubscribers(topicFor('_tables', '')).length === 1)
    // b does not carry stock/9: the first row goes out with the announcement; the next one is
    // held for a subscriber, then published (to nobody) after the wait.
    await a.peer.db.table('stock').put('lonely', { store: '9', qty: 1 })
    const published = a.peer.gossip.counters.messagesOut
    await a.peer.db.table('stock').put('lonelier', { store: '9', qty: 1 })
    await eventually('the held message is published', () => a.peer.gossip.counters.messagesOut > published, 5_000)
    expect(await b.peer.db.table('stock').get('lonely', { partition: '9' })).toBeNull()
  })

  it('an identify push on a live connection starts no further round; a new connection does', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)] })
    await eventually('connected and idle', () => a.peer.sync.status().rounds > 0 && b.peer.sync.status().rounds > 0 && [a, b].every((p) => p.peer.sync.status().peers.every((x) => x.state === 'idle')))
    await new Promise((r) => setTimeout(r, 1_500))
    const rounds = [a.peer.sync.status().rounds, b.peer.sync.status().rounds]
    let pushed = false
    b.peer.node.libp2p.addEventListener('peer:identify', () => (pushed = true), { once: true })
    // A new protocol changes a's peer record: libp2p pushes it to b over the open connection.
    await a.peer.node.libp2p.handle('/shoal-test/push/1.0.0', () => undefined)
    await eventually('b received the push', () => pushed)
    await new Promise((r) => setTimeout(r, 500))
    expect([a.peer.sync.status().rounds, b.peer.sync.status().rounds]).toEqual(rounds)
    // A fresh connection is a reconnect: it gets its catch-up round.
    await a.peer.node.libp2p.hangUp(b.peer.node.peerId)
    await eventually('a new round after reconnecting', () => b.peer.sync.status().rounds > rounds[1]!, 15_000)
  })

  it('two peers starting a round with each other at once run one round, which repairs both sides', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)] })
    await eventually('connected and idle', () => a.peer.sync.status().rounds > 0 && b.peer.sync.status().rounds > 0 && [a, b].every((p) => p.peer.sync.status().peers.every((x) => x.state === 'idle')))
    a.peer.gossip.stop()
    b.peer.gossip.stop()
    await a.peer.db.table('stock').put('only-a', { store: '1', qty: 1 })
    await b.peer.db.table('stock').put('only-b', { store: '1', qty: 2 })
    const [fromA, fromB] = await Promise.all([a.peer.sync.syncWith(b.peer.node.peerId), b.peer.sync.syncWith(a.peer.node.peerId)])
    // One round runs (the other side declines, or defers if a round was still going): never two.
    expect([fromA, fromB].filter((r) => r !== null).length).toBeLessThanOrEqual(1)
    await eventually('both rows on both peers', async () => {
      const rows = await Promise.all([a, b].flatMap((p) => [p.peer.db.table('stock').get('only-a'), p.peer.db.table('stock').get('only-b')]))
      return rows.every((r) => r !== null)
    })
    for (const p of [a, b]) expect(p.logs).toEqual([])
  })

  it.each([
    ['1.2.0, deflated frames', true],
    ['1.2.0-plain, from a peer with deflate off', false],
  ])('a round after a few changes goes by the change feed (%s), not the digest tree', async (_, deflate) => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)], deflate })
    await Promise.all(Array.from({ length: 50 }, (_, i) => a.peer.db.table('stock').put(`r${i}`, { store: '1', qty: i })))
    await eventually('b holds a\'s rows', () => b.peer.db.replication().rowCount('stock') === 50)
    // A round in sync: equal roots, so each side marks the other's feed position.
    await eventually('a round in sync', async () => {
      const r = await b.peer.sync.syncWith(a.peer.node.peerId)
      return r !== null && r.differing === 0
    })
    a.peer.gossip.stop()
    b.peer.gossip.stop()
    await Promise.all(Array.from({ length: 3 }, (_, i) => a.peer.db.table('stock').update(`r${i * 10}`, { qty: 100 + i })))
    await b.peer.db.table('stock').increment('r7', 'qty', 5)
    // The peer that asks counts the round's messages: a's own round may come first on a loaded
    // machine (its connect round, late), and then b's finds nothing left to do. Either way it
    // went by the feed.
    const sides = [a, b]
    const before = sides.map((p) => structuredClone(p.peer.sync.counters.bytesByMessage))
    const byFeed = () => sides.reduce((n, p) => n + p.peer.sync.counters.partitionsByFeed, 0)
    const byFeedBefore = byFeed()
    let stats: Awaited<ReturnType<typeof b.peer.sync.syncWith>> = null
    await eventually('a round from b', async () => (stats = await b.peer.sync.syncWith(a.peer.node.peerId)) !== null)
    expect(stats).toMatchObject({ feedMissed: 0, errors: [] })
    expect(await b.peer.db.table('stock').get('r20')).toMatchObject({ qty: 102 })
    expect(await a.peer.db.table('stock').get('r7')).toMatchObject({ qty: 12 })
    expect(byFeed()).toBeGreaterThan(byFeedBefore)
    const after = sides.map((p) => p.peer.sync.counters.bytesByMessage)
    expect(after.reduce((n, m) => n + (m.changes?.in ?? 0), 0)).toBeGreaterThan(before.reduce((n, m) => n + (m.changes?.in ?? 0), 0))
    for (const [i, m] of after.entries()) {
      expect(m.children?.in ?? 0).toBe(before[i]!.children?.in ?? 0)
      expect(m.leaves?.in ?? 0).toBe(before[i]!.leaves?.in ?? 0)
    }
    for (const p of [a, b]) expect(p.logs).toEqual([])
  })

  it('schema changes reach peers: a new table and a new column', async () => {
    const a = await start()
    const b = await start({ bootstrap: [addr(a)], tables: [] })
    await eventually('b learns the configured tables', () => b.peer.db.tables().length === 3)
    await a.peer.db.defineTable({ name: 'prices', primaryKey: 'sku', columns: { sku: 'string', eur: 'number' } })
    await a.peer.db.defineTable({ ...TABLES[0]!, columns: { ...TABLES[0]!.columns, colour: 'string' } } as never)
    await eventually('b knows the new table and column', () => b.peer.db.tables().some((t) => t.name === 'prices') && 'colour' in b.peer.db.schema('catalog').columns)
    await a.peer.db.table('catalog').put('c1', { name: 'x', colour: 'red' })
    await eventually('the row with the new column reaches b', async () => (await b.peer.db.table('catalog').get('c1'))?.colour === 'red')
  })
})

describe('hostile peers cannot harm a peer', () => {
  async function victim(): Promise<{ v: Running; attacker: ShoalNode; before: unknown }> {
    const v = await start({ carries: { stock: ['1'] } })
    await v.peer.db.table('stock').put('keep', { store: '1', qty: 5 })
    const attacker = await createNode({ dataDir: join(await tempDir(), 'attacker'), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    raw.push(attacker)
    await attacker.dial(addr(v))
    return { v, attacker, before: await v.peer.db.status() }
  }

  /** Sends raw frames on a sync stream and returns the responder's reply (or null if it closed the stream). */
  async function exchange(attacker: ShoalNode, v: Running, frames: Uint8Array[]): Promise<Uint8Array | null> {
    const stream = await attacker.libp2p.dialProtocol(v.peer.node.peerId, SYNC_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES * 2 })
    for (const f of frames) await lp.write(f)
    try {
      return (await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray()
    } catch {
      return null
    } finally {
      stream.abort(new Error('done'))
    }
  }

  async function stillHealthy(v: Running, attacker: ShoalNode, before: unknown): Promise<void> {
    expect(await v.peer.db.status()).toEqual(before)
    expect((await v.peer.db.check()).problems).toEqual([])
    // …and still serves a well-formed round.
    const reply = await exchange(attacker, v, [encodeRequest({ type: 'hello', carries: {}, roots: [], next: null })])
    expect(decodeResponse(reply!, 'hello')).toMatchObject({ type: 'hello' })
  }

  const cases: Array<[string, Uint8Array]> = [
    ['a malformed frame', new Uint8Array([0xff, 0xfe, 0x00, 0x01])],
    ['another protocol version', encode([SYNC_VERSION + 6, 'hello', {}, []])],
    ['an unknown message type', encode([SYNC_VERSION, 'truncate', 'stock'])],
  ]
  it.each(cases)('%s on the sync protocol is refused and logged', async (_what, frame) => {
    const { v, attacker, before } = await victim()
    expect(await exchange(attacker, v, [frame])).toBeNull()
    await eventually('the refusal is logged', () => v.logs.some((l) => l.includes('refused')))
    await stillHealthy(v, attacker, before)
  })

  it('an oversized frame is refused before it is read', async () => {
    const { v, attacker, before } = await victim()
    expect(await exchange(attacker, v, [new Uint8Array(MAX_FRAME_BYTES + 10)])).toBeNull()
    await eventually('the refusal is logged', () => v.logs.some((l) => /refused.*too long/i.test(l)))
    await stillHealthy(v, attacker, before)
  })

  it('a push for an unknown table, a foreign partition or with garbage rows changes nothing', async () => {
    const { v, attacker, before } = await victim()
    const unknown = await exchange(attacker, v, [encodeRequest({ type: 'push', table: 'nope', partition: '', rows: [{ key: 'k', bytes: new Uint8Array([1, 2, 3]) }] })])
    expect(decodeResponse(unknown!, 'push')).toMatchObject({ type: 'error', code: 'TABLE_UNKNOWN' })
    const foreign = await exchange(attacker, v, [encodeRequest({ type: 'push', table: 'stock', partition: '2', rows: [{ key: 'k', bytes: new Uint8Array([1, 2, 3]) }] })])
    expect(decodeResponse(foreign!, 'push')).toMatchObject({ type: 'error', code: 'NOT_CARRIED' })
    const garbage = await exchange(attacker, v, [encodeRequest({ type: 'push', table: 'stock', partition: '1', rows: [{ key: 'keep', bytes: new Uint8Array([9, 9, 9, 9]) }] })])
    expect(decodeResponse(garbage!, 'push')).toMatchObject({ type: 'push', applied: 0, refused: 1 })
    await stillHealthy(v, attacker, before)
  })

  it('gossip with an invalid signature or garbage payload is rejected and logged', async () => {
    const { v, attacker, before } = await victim()
    const topic = topicFor('stock', '1')
    attacker.pubsub.subscribe(topic)
    await eventually('attacker meshed with the victim', () => attacker.pubsub.getSubscribers(topic).length === 1 && v.peer.node.pubsub.getSubscribers(topic).length === 1)
    await attacker.pubsub.publish(topic, new Uint8Array([1, 2, 3]))
    await eventually('the garbage payload is logged', () => v.logs.some((l) => l.includes('not valid CBOR')))
    // Forge: sign with garbage so the signature does not verify.
    const config = (attacker.pubsub as unknown as { publishConfig: { privateKey: { sign: (b: Uint8Array) => Uint8Array } } }).publishConfig
    config.privateKey.sign = () => new Uint8Array(64).fill(1)
    await attacker.pubsub.publish(topic, encode([1, 'deltas', 'stock', '1', [['keep', new Uint8Array([1])]]]))
    await eventually('the invalid signature is logged', () => v.logs.some((l) => l.includes('invalid_signature')))
    await stillHealthy(v, attacker, before)
  })
})
