import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig, type PeerConfig } from '../../src/config.js'
import { MemoryLogger } from '../../src/log.js'
import { Peer } from '../../src/peer/peer.js'
import { tempDir } from '../helpers/tempdir.js'
import { createDatabase, eventually, unavailable, type SqlClient, type TestDatabase } from './databases.js'

/*
 * End to end with real peers (libp2p over TCP on 127.0.0.1, LevelDB stores): two stores keep
 * their tables in SQLite files, HQ in PostgreSQL. A row written by a plain SQL client at one
 * store reaches HQ's PostgreSQL; HQ's price change reaches both stores' SQLite; concurrent
 * changes to one row at two stores and HQ merge (different columns survive, counters add up);
 * a store offline for a while catches up both ways.
 */

const TABLES = [
  { name: 'catalog', primaryKey: 'sku', columns: { sku: 'string', name: 'string', price: 'number', color: 'string' } },
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' } },
  { name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', sku: 'string', qty: 'number', amount: 'number' } },
]
const MIRRORED = ['catalog', 'stock', 'sales']

interface Node {
  peer: Peer
  config: PeerConfig
  sql: SqlClient
}

const peers: Peer[] = []
const cleanup: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const p of peers.splice(0)) await p.stop().catch(() => undefined)
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined)
})

async function startPeer(config: PeerConfig): Promise<Peer> {
  const peer = await Peer.start(config, {
    logger: new MemoryLogger(),
    net: { discoveryIntervalMs: 1_000, redial: { minDelayMs: 200, maxDelayMs: 1_000 } },
    sync: { intervalMs: 2_000, connectDelayMs: 100 },
  })
  peers.push(peer)
  return peer
}

async function node(name: string, database: TestDatabase, options: { bootstrap?: string[]; carries?: Record<string, string[]> } = {}): Promise<Node> {
  const dir = await tempDir()
  const config: PeerConfig = {
    ...parseConfig({ name, tables: TABLES, carries: options.carries ?? {}, bridge: { database: database.database, tables: MIRRORED, pollMs: 50 }, open: true }, name),
    data: join(dir, 'data'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: options.bootstrap ?? [],
    mdns: false,
    http: null,
  }
  const sql = await database.client()
  cleanup.push(() => sql.close())
  return { peer: await startPeer(config), config, sql }
}

async function mesh(): Promise<{ hq: Node; s1: Node; s2: Node; dbs: Record<string, TestDatabase> }> {
  const dbs = { hq: await createDatabase('postgres'), s1: await createDatabase('sqlite'), s2: await createDatabase('sqlite') }
  cleanup.push(() => dbs.hq.drop())
  const hq = await node('hq', dbs.hq)
  const bootstrap = [hq.peer.node.multiaddrs()[0]!.toString()]
  const s1 = await node('store-1', dbs.s1, { bootstrap, carries: { stock: ['1'], sales: ['1'] } })
  const s2 = await node('store-2', dbs.s2, { bootstrap, carries: { stock: ['2'], sales: ['2'] } })
  await eventually(() => expect(hq.peer.node.connectedPeers().length).toBe(2), 30_000, 'stores connected to HQ')
  return { hq, s1, s2, dbs }
}

async function one(sql: SqlClient, query: string, params: unknown[] = []): Promise<Record<string, unknown> | null> {
  const rows = await sql.rows(query, params)
  return rows[0] ?? null
}

describe('SQL bridge end to end: store SQLite ↔ HQ PostgreSQL ↔ store SQLite', () => {
  let skip: string | null = null
  beforeAll(async () => {
    skip = await unavailable('postgres')
  })

  it('a sale inserted in a store\'s SQLite reaches HQ\'s PostgreSQL; a price update at HQ reaches both stores', { timeout: 120_000 }, async (ctx) => {
    if (skip !== null) return ctx.skip()
    const { hq, s1, s2 } = await mesh()
    await s1.sql.run(`INSERT INTO sales (id, store, sku, qty, amount) VALUES ('s1-0001', '1', 'SKU-1', 2, 19.9)`)
    await eventually(async () => expect(await one(hq.sql, `SELECT id, store, sku, qty, amount FROM sales WHERE id = ?`, ['s1-0001'])).toEqual({ id: 's1-0001', store: '1', sku: 'SKU-1', qty: 2, amount: 19.9 }), 30_000, 'sale at HQ')
    // Store 2 does not carry partition 1.
    expect(await one(s2.sql, `SELECT id FROM sales WHERE id = ?`, ['s1-0001'])).toBeNull()

    await hq.sql.run(`INSERT INTO catalog (sku, name, price) VALUES ('SKU-1', 'Umbrella', 12.5)`)
    await eventually(async () => expect(await one(s2.sql, `SELECT name, price FROM catalog WHERE sku = 'SKU-1'`)).toEqual({ name: 'Umbrella', price: 12.5 }), 30_000)
    await hq.sql.run(`UPDATE catalog SET price = 11 WHERE sku = 'SKU-1'`)
    for (const store of [s1, s2]) {
      await eventually(async () => expect(await one(store.sql, `SELECT name, price FROM catalog WHERE sku = 'SKU-1'`)).toEqual({ name: 'Umbrella', price: 11 }), 30_000, 'price at the stores')
    }
    const status = await hq.peer.status()
    expect(status.bridge?.tables.find((t) => t.table === 'sales')).toMatchObject({ writtenBack: 1, deadLetters: 0 })
    expect(status.bridge?.tables.find((t) => t.table === 'catalog')).toMatchObject({ captured: 2 })
  })

  it('concurrent updates of one row at two stores and HQ merge: different columns survive, counters add up', { timeout: 120_000 }, async (ctx) => {
    if (skip !== null) return ctx.skip()
    const { hq, s1, s2 } = await mesh()
    await hq.sql.run(`INSERT INTO catalog (sku, name, price, color) VALUES ('SKU-2', 'Kettle', 30, 'grey')`)
    await hq.sql.run(`INSERT INTO stock (id, store, sku, qty, shelf) VALUES ('1:SKU-2', '1', 'SKU-2', 20, 'A1')`)
    await eventually(async () => {
      expect(await one(s1.sql, `SELECT CAST(qty AS INTEGER) AS qty FROM stock WHERE id = '1:SKU-2'`)).toEqual({ qty: 20 })
      expect(await one(s2.sql, `SELECT name FROM catalog WHERE sku = 'SKU-2'`)).toEqual({ name: 'Kettle' })
    }, 30_000)
    // At the same moment: store 1 renames and sells 2, store 2 recolours, HQ reprices and restocks 10.
    await Promise.all([
      s1.sql.run(`UPDATE catalog SET name = 'Steel kettle' WHERE sku = 'SKU-2'`),
      s1.sql.run(`UPDATE stock SET qty = qty - 2 WHERE id = '1:SKU-2'`),
      s2.sql.run(`UPDATE catalog SET color = 'red' WHERE sku = 'SKU-2'`),
      hq.sql.run(`UPDATE catalog SET price = 27.5 WHERE sku = 'SKU-2'`),
      hq.sql.run(`UPDATE stock SET qty = qty + 10, shelf = 'B2' WHERE id = '1:SKU-2'`),
    ])
    const merged = { name: 'Steel kettle', price: 27.5, color: 'red' }
    for (const n of [hq, s1, s2]) {
      await eventually(async () => expect(await one(n.sql, `SELECT name, price, color FROM catalog WHERE sku = 'SKU-2'`)).toEqual(merged), 30_000, `catalog merged at ${n.config.name}`)
    }
    for (const n of [hq, s1]) {
      await eventually(async () => expect(await one(n.sql, `SELECT CAST(qty AS INTEGER) AS qty, shelf FROM stock WHERE id = '1:SKU-2'`)).toEqual({ qty: 28, shelf: 'B2' }), 30_000, `stock merged at ${n.config.name}`)
    }
    expect(await one(s2.sql, `SELECT id FROM stock WHERE id = '1:SKU-2'`)).toBeNull()
  })

  it('a store offline for a while catches up in both directions', { timeout: 150_000 }, async (ctx) => {
    if (skip !== null) return ctx.skip()
    const { hq, s1, s2 } = await mesh()
    await hq.sql.run(`INSERT INTO stock (id, store, sku, qty) VALUES ('2:SKU-3', '2', 'SKU-3', 5)`)
    await eventually(async () => expect(await one(s2.sql, `SELECT CAST(qty AS INTEGER) AS qty FROM stock WHERE id = '2:SKU-3'`)).toEqual({ qty: 5 }), 30_000)
    await s2.peer.stop()
    peers.splice(peers.indexOf(s2.peer), 1)
    // While store 2's peer is down: its till keeps selling (captured in its SQLite)…
    for (let i = 0; i < 20; i++) await s2.sql.run(`INSERT INTO sales (id, store, sku, qty, amount) VALUES (?, '2', 'SKU-3', 1, 4.5)`, [`s2-${String(i).padStart(4, '0')}`])
    await s2.sql.run(`UPDATE stock SET qty = qty - 3 WHERE id = '2:SKU-3'`)
    // …and HQ restocks it and changes the catalog.
    await hq.sql.run(`UPDATE stock SET qty = qty + 7 WHERE id = '2:SKU-3'`)
    await hq.sql.run(`INSERT INTO catalog (sku, name, price) VALUES ('SKU-3', 'Torch', 8)`)
    await new Promise((resolve) => setTimeout(resolve, 300))
    s2.peer = await startPeer({ ...s2.config, bootstrap: [hq.peer.node.multiaddrs()[0]!.toString()] })
    await eventually(async () => expect(Number((await one(hq.sql, `SELECT count(*) AS n FROM sales WHERE store = '2'`))!.n)).toBe(20), 60_000, 'offline sales at HQ')
    for (const n of [hq, s2]) await eventually(async () => expect(await one(n.sql, `SELECT CAST(qty AS INTEGER) AS qty FROM stock WHERE id = '2:SKU-3'`)).toEqual({ qty: 9 }), 60_000, `stock at ${n.config.name}`)
    await eventually(async () => expect(await one(s2.sql, `SELECT name FROM catalog WHERE sku = 'SKU-3'`)).toEqual({ name: 'Torch' }), 60_000)
    // Store 1 never sees store 2's partitions.
    expect(await one(s1.sql, `SELECT count(*) AS n FROM sales WHERE store = '2'`)).toEqual({ n: 0 })
  })
})
