/*
 * SQL bridge benchmark (issue 13): a store peer mirroring a SQLite file and an HQ peer mirroring
 * PostgreSQL, both real peers (libp2p over TCP on 127.0.0.1, LevelDB stores) in this process; the
 * store's "till" is a worker thread with its own SQLite connection, HQ's client a pg connection.
 *
 *   npm run bench:sql                          full run (20k changes each way, 100k-row load)
 *   npm run bench:sql -- --quick               smaller sizes, for a smoke run
 *   npm run bench:sql -- --no-save             do not write bench/results/sql-*.json
 *   npm run bench:sql -- --engine yjs          the mirrored table on another row engine (default
 *                                              columns: what the bridge derives for a SQL table)
 *
 * Measures: changes/s from SQL commit at the store to the row visible in HQ's PostgreSQL (and
 * back, HQ → store SQLite); p50/p99 latency of one change each way; initial load rows/s of a 100k
 * row SQLite table attached to a new peer; capture overhead on the writing application (INSERT/s
 * into a mirrored vs an unmirrored SQLite table, same run). The table goes to stdout; JSON to
 * bench/results/. Needs the local PostgreSQL (127.0.0.1:5432, trust auth).
 */
import '../src/polyfill.js'
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import Database from 'better-sqlite3'
import pg from 'pg'
import { SqlBridge } from '../src/bridge/bridge.js'
import { parseBridgeConfig } from '../src/bridge/config.js'
import { parseConfig, type PeerConfig } from '../src/config.js'
import { silentLogger } from '../src/log.js'
import { Peer } from '../src/peer/peer.js'
import { Shoal } from '../src/shoal.js'
import { cpuMark, foreignCores } from './lib/cpu.js'
import { eventually, sleep } from './lib/poll.js'
import { repoRoot, srcHash, writeResults } from './lib/results.js'
import { quantile } from './lib/stats.js'
import { removeDir, tempDir } from './lib/temp.js'

const args = new Set(process.argv.slice(2))
const QUICK = args.has('--quick')
const SAVE = !args.has('--no-save')
const CHANGES = QUICK ? 3_000 : 20_000
const ROWS_PER_COMMIT = 100
const LATENCY_SAMPLES = QUICK ? 50 : 300
const LOAD_ROWS = QUICK ? 20_000 : 100_000
const OVERHEAD_SINGLE = QUICK ? 500 : 2_000
const OVERHEAD_BULK = QUICK ? 20_000 : 100_000
const PG_ADMIN = process.env.SHOAL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const root = repoRoot()

const ENGINE_AT = process.argv.indexOf('--engine')
const ENGINE = ENGINE_AT >= 0 ? process.argv[ENGINE_AT + 1] : 'columns'
if (!['yjs', 'automerge', 'columns'].includes(ENGINE ?? '')) throw new Error(`--engine must be yjs, automerge or columns (got '${ENGINE}')`)
const TABLES = [{ name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: ENGINE, columns: { id: 'string', store: 'string', sku: 'string', qty: 'number', amount: 'number' } }]

const log = (message: string): void => void process.stderr.write(`${message}\n`)

/** The store's till: a worker thread with its own SQLite connection, so its commits do not share our event loop. */
const TILL = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.path, { timeout: 5000 })
const insert = db.prepare('INSERT INTO sales (id, store, sku, qty, amount) VALUES (?, ?, ?, ?, ?)')
parentPort.on('message', (m) => {
  const t0 = performance.now()
  const many = db.transaction((rows) => { for (const r of rows) insert.run(r, '1', 'SKU', 1, 2.5) })
  for (let i = 0; i < m.ids.length; i += m.perCommit) many(m.ids.slice(i, i + m.perCommit))
  parentPort.postMessage({ ms: performance.now() - t0 })
})
`

async function till(path: string): Promise<{ insert: (ids: string[], perCommit: number) => Promise<number>; stop: () => Promise<void> }> {
  const worker = new Worker(TILL, { eval: true, workerData: { path, driver: join(root, 'node_modules/better-sqlite3') } })
  return {
    insert: (ids, perCommit) =>
      new Promise((resolve) => {
        worker.once('message', (m: { ms: number }) => resolve(m.ms))
        worker.postMessage({ ids, perCommit })
      }),
    stop: async () => void (await worker.terminate()),
  }
}

async function startPeer(name: string, dir: string, database: string, extra: Partial<PeerConfig>): Promise<Peer> {
  const config: PeerConfig = {
    ...parseConfig({ name, tables: TABLES, bridge: { database, tables: ['sales'], pollMs: 50 }, open: true }, name),
    data: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    http: null,
    ...extra,
  }
  return Peer.start(config, { logger: silentLogger, sync: { intervalMs: 5_000, connectDelayMs: 100 } })
}

/** Polls every 2 ms: the latencies measured here are a few ms. */
const until = (what: string, check: () => Promise<boolean> | boolean, ms: number): Promise<void> => eventually(what, check, ms, 2)

type Metrics = Record<string, number | string | null>

async function main(): Promise<void> {
  const started = cpuMark()
  const work = await tempDir('bench', 'sql')
  const dbName = `shoal_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_ADMIN })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${dbName}`)
  const url = new URL(PG_ADMIN)
  url.pathname = `/${dbName}`
  const hqUrl = url.toString()
  const tillPath = join(work, 'till.db')
  const metrics: Metrics = {}
  const peers: Peer[] = []
  const hqSql = new pg.Client({ connectionString: hqUrl })
  try {
    // ---- mesh: store (SQLite) ↔ HQ (PostgreSQL) -------------------------------------------------
    const hq = await startPeer('hq', join(work, 'hq'), hqUrl, {})
    peers.push(hq)
    const store = await startPeer('store-1', join(work, 'store'), `sqlite:${tillPath}`, { bootstrap: [hq.node.multiaddrs()[0]!.toString()], carries: { sales: ['1'] } })
    peers.push(store)
    await until('peers connected', () => hq.node.connectedPeers().length === 1, 30_000)
    await hqSql.connect()
    const local = new Database(tillPath, { timeout: 5000 })
    const t = await till(tillPath)
    const hqCount = async (prefix: string) => Number((await hqSql.query(`SELECT count(*) AS n FROM sales WHERE id LIKE $1`, [`${prefix}%`])).rows[0].n)
    const storeCount = (prefix: string) => (local.prepare(`SELECT count(*) AS n FROM sales WHERE id LIKE ?`).get(`${prefix}%`) as { n: number }).n

    // Warm up both directions (JIT, first gossip topic, prepared statements).
    await t.insert(['warm-s'], 1)
    await until('warm-up to HQ', async () => (await hqCount('warm-s')) === 1, 30_000)
    await hqSql.query(`INSERT INTO sales (id, store, sku, qty, amount) VALUES ('warm-h', '1', 'SKU', 1, 2.5)`)
    await until('warm-up to store', () => storeCount('warm-h') === 1, 30_000)

    // ---- throughput, store → HQ --------------------------------------------------------------
    log(`store → HQ: ${CHANGES} inserts in commits of ${ROWS_PER_COMMIT}…`)
    const up = Array.from({ length: CHANGES }, (_, i) => `u${String(i).padStart(6, '0')}`)
    let t0 = performance.now()
    const tillMs = await t.insert(up, ROWS_PER_COMMIT)
    await until('all changes at HQ', async () => (await hqCount('u')) === CHANGES, 600_000)
    let elapsed = performance.now() - t0
    metrics.up_changes_per_s = Math.round(CHANGES / (elapsed / 1000))
    metrics.up_seconds = +(elapsed / 1000).toFixed(2)
    metrics.up_till_commit_seconds = +(tillMs / 1000).toFixed(2)
    log(`  ${metrics.up_changes_per_s} changes/s (${metrics.up_seconds} s)`)

    // ---- throughput, HQ → store --------------------------------------------------------------
    log(`HQ → store: ${CHANGES} inserts in commits of ${ROWS_PER_COMMIT}…`)
    t0 = performance.now()
    for (let i = 0; i < CHANGES; i += ROWS_PER_COMMIT) {
      const values: string[] = []
      const params: unknown[] = []
      for (let j = i; j < Math.min(CHANGES, i + ROWS_PER_COMMIT); j++) {
        params.push(`d${String(j).padStart(6, '0')}`)
        values.push(`($${params.length}, '1', 'SKU', 1, 2.5)`)
      }
      await hqSql.query(`INSERT INTO sales (id, store, sku, qty, amount) VALUES ${values.join(', ')}`, params)
    }
    await until('all changes at the store', () => storeCount('d') === CHANGES, 600_000)
    elapsed = performance.now() - t0
    metrics.down_changes_per_s = Math.round(CHANGES / (elapsed / 1000))
    metrics.down_seconds = +(elapsed / 1000).toFixed(2)
    log(`  ${metrics.down_changes_per_s} changes/s (${metrics.down_seconds} s)`)

    // ---- latency of one change, both ways -------------------------------------------------------
    log(`latency: ${LATENCY_SAMPLES} single changes each way…`)
    const upLat: number[] = []
    const downLat: number[] = []
    const probe = hqSql
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const id = `lu${i}`
      const start = performance.now()
      local.prepare(`INSERT INTO sales (id, store, sku, qty, amount) VALUES (?, '1', 'SKU', 1, 2.5)`).run(id)
      for (;;) {
        if ((await probe.query(`SELECT 1 FROM sales WHERE id = $1`, [id])).rowCount === 1) break
      }
      upLat.push(performance.now() - start)
      const idd = `ld${i}`
      const back = performance.now()
      await hqSql.query(`INSERT INTO sales (id, store, sku, qty, amount) VALUES ($1, '1', 'SKU', 1, 2.5)`, [idd])
      const find = local.prepare(`SELECT 1 FROM sales WHERE id = ?`)
      while (find.get(idd) === undefined) await new Promise((resolve) => setImmediate(resolve))
      downLat.push(performance.now() - back)
      await sleep(5)
    }
    upLat.sort((a, b) => a - b)
    downLat.sort((a, b) => a - b)
    metrics.up_latency_p50_ms = +quantile(upLat, 0.5).toFixed(1)
    metrics.up_latency_p99_ms = +quantile(upLat, 0.99).toFixed(1)
    metrics.down_latency_p50_ms = +quantile(downLat, 0.5).toFixed(1)
    metrics.down_latency_p99_ms = +quantile(downLat, 0.99).toFixed(1)
    log(`  store → HQ p50 ${metrics.up_latency_p50_ms} ms p99 ${metrics.up_latency_p99_ms} ms; HQ → store p50 ${metrics.down_latency_p50_ms} ms p99 ${metrics.down_latency_p99_ms} ms`)
    await t.stop()
    local.close()
    for (const p of peers.splice(0).reverse()) await p.stop()

    // ---- initial load of a 100k-row table ---------------------------------------------------------
    log(`initial load: attaching a SQLite table of ${LOAD_ROWS} rows…`)
    const loadPath = join(work, 'load.db')
    const loadDb = new Database(loadPath)
    loadDb.exec(`CREATE TABLE sales (id TEXT PRIMARY KEY, store TEXT, sku TEXT, qty REAL, amount REAL)`)
    const put = loadDb.prepare(`INSERT INTO sales VALUES (?, ?, ?, ?, ?)`)
    loadDb.transaction(() => {
      for (let i = 0; i < LOAD_ROWS; i++) put.run(`L${String(i).padStart(7, '0')}`, String(i % 10), `SKU-${i % 500}`, i % 7, (i % 100) / 4)
    })()
    loadDb.close()
    const shoal = await Shoal.open({ dir: join(work, 'load-store') })
    await shoal.defineTable(TABLES[0] as never)
    t0 = performance.now()
    const bridge = await SqlBridge.start({ db: shoal, config: parseBridgeConfig({ database: `sqlite:${loadPath}`, tables: [{ table: 'sales', engine: ENGINE }] }, 'bench'), logger: silentLogger })
    await until('100k rows in Shoal', async () => (await shoal.status()).tables[0]!.rows === LOAD_ROWS, 900_000)
    elapsed = performance.now() - t0
    metrics.load_rows = LOAD_ROWS
    metrics.load_rows_per_s = Math.round(LOAD_ROWS / (elapsed / 1000))
    metrics.load_seconds = +(elapsed / 1000).toFixed(2)
    log(`  ${metrics.load_rows_per_s} rows/s (${metrics.load_seconds} s)`)

    // ---- capture overhead on the writing application --------------------------------------------
    log('capture overhead: INSERT/s into a mirrored and an unmirrored SQLite table…')
    await bridge.stop()
    const overheadPath = join(work, 'overhead.db')
    const o = new Database(overheadPath)
    o.pragma('journal_mode = WAL')
    o.exec(`CREATE TABLE mirrored (id TEXT PRIMARY KEY, store TEXT, sku TEXT, qty REAL, amount REAL); CREATE TABLE plain (id TEXT PRIMARY KEY, store TEXT, sku TEXT, qty REAL, amount REAL)`)
    await shoal.defineTable({ ...(TABLES[0] as object), name: 'mirrored' } as never)
    const ob = await SqlBridge.start({ db: shoal, config: parseBridgeConfig({ database: `sqlite:${overheadPath}`, tables: ['mirrored'] }, 'bench'), logger: silentLogger })
    await ob.stop() // triggers installed; the bridge is stopped so it does not compete for the CPU.
    let serial = 0
    const rate = (table: string, n: number, single: boolean): number => {
      const ins = o.prepare(`INSERT INTO ${table} VALUES (?, '1', 'SKU', 1, 2.5)`)
      const start = performance.now()
      if (single) for (let i = 0; i < n; i++) ins.run(`${table}-${serial++}`)
      else o.transaction(() => {
        for (let i = 0; i < n; i++) ins.run(`${table}-${serial++}`)
      })()
      return n / ((performance.now() - start) / 1000)
    }
    // Interleaved, twice, so a neighbour's load hits both alike.
    const single = { plain: 0, mirrored: 0 }
    const bulk = { plain: 0, mirrored: 0 }
    for (let round = 0; round < 2; round++) {
      single.plain += rate('plain', OVERHEAD_SINGLE / 2, true)
      single.mirrored += rate('mirrored', OVERHEAD_SINGLE / 2, true)
      bulk.plain += rate('plain', OVERHEAD_BULK / 2, false)
      bulk.mirrored += rate('mirrored', OVERHEAD_BULK / 2, false)
    }
    metrics.insert_per_s_plain_single = Math.round(single.plain / 2)
    metrics.insert_per_s_mirrored_single = Math.round(single.mirrored / 2)
    metrics.capture_overhead_single = +(single.plain / single.mirrored).toFixed(2)
    metrics.insert_per_s_plain_bulk = Math.round(bulk.plain / 2)
    metrics.insert_per_s_mirrored_bulk = Math.round(bulk.mirrored / 2)
    metrics.capture_overhead_bulk = +(bulk.plain / bulk.mirrored).toFixed(2)
    log(`  one row per commit: ${metrics.insert_per_s_plain_single} vs ${metrics.insert_per_s_mirrored_single} INSERT/s (${metrics.capture_overhead_single}×); one commit: ${metrics.insert_per_s_plain_bulk} vs ${metrics.insert_per_s_mirrored_bulk} (${metrics.capture_overhead_bulk}×)`)
    o.close()
    await shoal.close()
  } finally {
    for (const p of peers.reverse()) await p.stop().catch(() => undefined)
    await hqSql.end().catch(() => undefined)
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined)
    await admin.end()
    await removeDir(work)
  }
  metrics.foreign_cores = foreignCores(started)

  const targets: Array<[string, string, boolean]> = [
    ['changes/s store SQLite → HQ PostgreSQL', `${metrics.up_changes_per_s} (target ≥ 5,000)`, Number(metrics.up_changes_per_s) >= 5000],
    ['changes/s HQ PostgreSQL → store SQLite', `${metrics.down_changes_per_s} (target ≥ 5,000)`, Number(metrics.down_changes_per_s) >= 5000],
    ['latency of one change, store → HQ', `p50 ${metrics.up_latency_p50_ms} ms, p99 ${metrics.up_latency_p99_ms} ms (targets ≤ 20, ≤ 100)`, Number(metrics.up_latency_p50_ms) <= 20 && Number(metrics.up_latency_p99_ms) <= 100],
    ['latency of one change, HQ → store', `p50 ${metrics.down_latency_p50_ms} ms, p99 ${metrics.down_latency_p99_ms} ms (targets ≤ 20, ≤ 100)`, Number(metrics.down_latency_p50_ms) <= 20 && Number(metrics.down_latency_p99_ms) <= 100],
    [`initial load of ${LOAD_ROWS} rows (SQLite → Shoal)`, `${metrics.load_rows_per_s} rows/s (${metrics.load_seconds} s)`, true],
    ['capture overhead, one row per commit', `${metrics.insert_per_s_plain_single} → ${metrics.insert_per_s_mirrored_single} INSERT/s: ${metrics.capture_overhead_single}× (target ≤ 2×)`, Number(metrics.capture_overhead_single) <= 2],
    ['capture overhead, many rows per commit', `${metrics.insert_per_s_plain_bulk} → ${metrics.insert_per_s_mirrored_bulk} INSERT/s: ${metrics.capture_overhead_bulk}× (target ≤ 2×)`, Number(metrics.capture_overhead_bulk) <= 2],
  ]
  const width = Math.max(...targets.map((t) => t[0].length))
  console.log(`\nSQL bridge (${QUICK ? 'quick' : 'full'} run, engine ${ENGINE}, ${cpus().length} cores, ${metrics.foreign_cores ?? '?'} cores busy with other work on average)\n`)
  for (const [what, value, ok] of targets) console.log(`${what.padEnd(width)}  ${value}  ${ok ? 'met' : 'MISSED'}`)
  if (SAVE) {
    const record = { at: new Date().toISOString(), quick: QUICK, node: process.version, source: srcHash(), sizes: { CHANGES, ROWS_PER_COMMIT, LATENCY_SAMPLES, LOAD_ROWS }, engine: ENGINE, metrics }
    log(`wrote ${(await writeResults('sql', QUICK ? 'quick' : 'full', record)).join(' and ')}`)
  }
}

await main()
