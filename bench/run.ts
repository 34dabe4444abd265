/*
 * Shoal storage benchmark: both row engines side by side, same machine, one run.
 *
 *   npm run bench                      full run (~10 min on 2 cores)
 *   npm run bench -- --quick           smoke run (small N, no 1M rows, one repetition)
 *   npm run bench -- --skip-1m         everything but the 1M-row memory/open phase (or SHOAL_BENCH_SKIP_1M=1)
 *   npm run bench -- --only batched    only some phases (comma list: single,batched,reads,remote,sizes,memory)
 *   npm run bench -- --engines yjs     only some engines
 *   npm run bench -- --no-save         do not write bench/results/*.json (for profiling runs)
 *   npm run bench -- --cpu-prof-dir D  write V8 CPU profiles of the timed batched-write and remote-apply sections to D
 *
 * Every measurement uses a fresh data folder under os.tmpdir(), removed afterwards. Memory and
 * open-time phases run in child processes so their RSS is not polluted by earlier phases.
 * Progress goes to stderr; the table goes to stdout; JSON to bench/results/.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuMark, foreignCores, profiled, sourceHash } from './common.js'
import { Shoal, validateSchema, type ChangeEvent, type EngineName, type Table, type TableSchema } from '../src/index.js'
import { engineFor } from '../src/table/engines.js'
import { RowDocument } from '../src/table/row.js'

// ---- configuration ---------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(name)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const QUICK = flag('--quick')
const SKIP_1M = QUICK || flag('--skip-1m') || process.env.SHOAL_BENCH_SKIP_1M === '1'
const SAVE = !flag('--no-save')
const ENGINES = (option('--engines') ?? 'yjs,automerge').split(',') as EngineName[]
const ALL_PHASES = 'sizes,single,batched,reads,remote,memory'
const PHASES = new Set((option('--only') ?? ALL_PHASES).split(','))
const PROF_DIR = option('--cpu-prof-dir')
/** A complete run (every phase, both engines, full sizes, 1M rows) also updates store-latest.json. */
const COMPLETE = !QUICK && !SKIP_1M && option('--only') === undefined && option('--engines') === undefined

/** Rows per partition value: `store` = i % PARTITIONS. */
const PARTITIONS = 8
/** Concurrent puts issued per Promise.all chunk; equals MAX_WRITES_PER_BATCH, so one chunk ≈ one LevelDB batch. */
const CHUNK = 4096
/** If loading 1M Automerge rows is estimated to take longer than this (from the 100k rate), skip it. */
const MAX_1M_SECONDS = 360

interface Sizes {
  runs: number
  single: number
  batched: Record<EngineName, number>
  readOps: number
  hotSet: number
  /** rowCacheSize for the warm reads: big enough for the hot set whatever an engine's cache weight. */
  warmCache: number
  coldCache: number
  readConcurrency: number
  remoteRows: Record<EngineName, number>
  memoryRows: number[]
  openRuns: number
}

const SIZES: Sizes = QUICK
  ? {
      runs: 1,
      single: 200,
      batched: { yjs: 5_000, automerge: 5_000 },
      readOps: 2_000,
      hotSet: 1_000,
      warmCache: 20_000,
      coldCache: 200,
      readConcurrency: 256,
      remoteRows: { yjs: 2_000, automerge: 2_000 },
      memoryRows: [10_000],
      openRuns: 1,
    }
  : {
      runs: 3,
      single: 2_000,
      // Automerge is ~10× slower per row (and slower still while its WASM heap grows): fewer rows keep the run short.
      batched: { yjs: 50_000, automerge: 10_000 },
      readOps: 20_000,
      hotSet: 5_000,
      warmCache: 100_000,
      coldCache: 1_000,
      readConcurrency: 256,
      remoteRows: { yjs: 25_000, automerge: 5_000 },
      memoryRows: SKIP_1M ? [100_000] : [100_000, 1_000_000],
      openRuns: 3,
    }

// ---- helpers ---------------------------------------------------------------------------------

const THIS_FILE = fileURLToPath(import.meta.url)
const started = performance.now()

function progress(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[bench ${t}s] ${message}\n`)
}

function stockSchema(engine: EngineName): TableSchema {
  return {
    name: 'stock',
    primaryKey: 'sku',
    partitionBy: 'store',
    engine,
    columns: { sku: 'string', store: 'string', name: 'string', price: 'number', qty: 'counter', notes: 'text' },
  }
}

const skuOf = (i: number): string => `sku${String(i).padStart(7, '0')}`
const storeOf = (i: number): string => String(i % PARTITIONS)
const rowOf = (i: number): Record<string, unknown> => ({ store: storeOf(i), name: `Widget ${i}`, price: (i % 1000) / 4, qty: 1 + (i % 50) })

async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-bench-${label}-`))
}

async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

/** Apparent size of every file under `dir`, in bytes (what `du -sb` reports). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) total += await folderBytes(path)
    else total += (await stat(path)).size
  }
  return total
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Deterministic PRNG (mulberry32), so every engine reads the same keys. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) {
    g()
    g()
  }
}

async function openStock(dir: string, engine: EngineName, options: { rowCacheSize?: number; syncWrites?: boolean } = {}): Promise<{ db: Shoal; t: Table }> {
  const db = await Shoal.open({ dir, ...options })
  await db.defineTable(stockSchema(engine))
  return { db, t: db.table('stock') }
}

/** Puts rows [from, from + n) in concurrent chunks of CHUNK (group commit). */
async function loadRows(t: Table, from: number, n: number, onChunk?: (done: number) => void): Promise<void> {
  for (let start = from; start < from + n; start += CHUNK) {
    const end = Math.min(from + n, start + CHUNK)
    const puts: Array<Promise<unknown>> = []
    for (let i = start; i < end; i++) puts.push(t.put(skuOf(i), rowOf(i)))
    await Promise.all(puts)
    onChunk?.(end - from)
  }
}

function rate(ops: number, ms: number): number {
  return ops / (ms / 1000)
}


// ---- phases ----------------------------------------------------------------------------------

/** One engine's results; `*_runs` arrays hold every repetition behind a median. */
type Metrics = Record<string, number | string | boolean | null | number[]>

/** 1. Sequential awaited puts of new rows: one fsync per row. */
async function benchSingle(engine: EngineName, m: Metrics): Promise<void> {
  const rates: number[] = []
  for (let run = 0; run < SIZES.runs; run++) {
    progress(`${engine}: single durable puts, run ${run + 1}/${SIZES.runs} (${SIZES.single} rows)`)
    const dir = await tempDir('single')
    const { db, t } = await openStock(dir, engine)
    const t0 = performance.now()
    for (let i = 0; i < SIZES.single; i++) await t.put(skuOf(i), rowOf(i))
    rates.push(rate(SIZES.single, performance.now() - t0))
    await db.close()
    await removeDir(dir)
  }
  m.single_writes_per_s = median(rates)
  m.single_writes_per_s_runs = rates
  m.single_rows = SIZES.single
}

/** 2. Concurrent puts of new rows in chunks of CHUNK; the last run's folder is the read phase's data set. */
async function benchBatched(engine: EngineName, m: Metrics): Promise<string | null> {
  const n = SIZES.batched[engine]
  const rates: number[] = []
  let keep: string | null = null
  for (let run = 0; run < SIZES.runs; run++) {
    progress(`${engine}: batched durable puts, run ${run + 1}/${SIZES.runs} (${n} rows, chunks of ${CHUNK})`)
    const dir = await tempDir('batched')
    const { db, t } = await openStock(dir, engine)
    const t0 = performance.now()
    await profiled(run === 0 ? PROF_DIR : undefined, `${engine}-batched-puts`, () => loadRows(t, 0, n), progress)
    rates.push(rate(n, performance.now() - t0))
    await db.close()
    if (run === SIZES.runs - 1) {
      m.disk_bytes_per_row_batched = (await folderBytes(dir)) / n
      keep = dir
    } else {
      await removeDir(dir)
    }
  }
  m.batched_writes_per_s = median(rates)
  m.batched_writes_per_s_runs = rates
  m.batched_rows = n
  return keep
}

async function timedReads(t: Table, keys: number[], concurrency: number, withPartition: boolean): Promise<number> {
  const t0 = performance.now()
  let misses = 0
  if (concurrency <= 1) {
    for (const i of keys) if ((await t.get(skuOf(i), withPartition ? { partition: storeOf(i) } : undefined)) === null) misses++
  } else {
    for (let start = 0; start < keys.length; start += concurrency) {
      const rows = await Promise.all(keys.slice(start, start + concurrency).map((i) => t.get(skuOf(i), withPartition ? { partition: storeOf(i) } : undefined)))
      for (const r of rows) if (r === null) misses++
    }
  }
  const ms = performance.now() - t0
  if (misses > 0) throw new Error(`${misses} reads of existing rows returned null`)
  return rate(keys.length, ms)
}

/** 3. Random gets of existing rows, warm (hot set fits the row cache) and cold (small cache). */
async function benchReads(engine: EngineName, m: Metrics, dataset: string | null): Promise<void> {
  let dir = dataset
  const rows = SIZES.batched[engine]
  if (dir === null) {
    progress(`${engine}: loading ${rows} rows for the read phase`)
    dir = await tempDir('reads')
    const { db, t } = await openStock(dir, engine, { syncWrites: false })
    await loadRows(t, 0, rows)
    await db.close()
  }
  const random = rng(42)
  const hot = Array.from({ length: SIZES.hotSet }, () => Math.floor(random() * rows))
  const hotReads = Array.from({ length: SIZES.readOps }, () => hot[Math.floor(random() * hot.length)]!)
  const coldReads = Array.from({ length: SIZES.readOps }, () => Math.floor(random() * rows))
  const results: Record<string, number[]> = { warm_seq: [], warm_conc: [], warm_seq_p: [], cold_seq: [], cold_conc: [] }
  for (let run = 0; run < SIZES.runs; run++) {
    progress(`${engine}: reads, run ${run + 1}/${SIZES.runs} (${SIZES.readOps} gets over ${rows} rows)`)
    {
      // rowCacheSize counts units (an Automerge row weighs more than a Yjs row): 20 units per hot row.
      const db = await Shoal.open({ dir, rowCacheSize: SIZES.warmCache })
      const t = db.table('stock')
      await timedReads(t, hot, SIZES.readConcurrency, false) // prime the cache
      results.warm_seq!.push(await timedReads(t, hotReads, 1, false))
      results.warm_conc!.push(await timedReads(t, hotReads, SIZES.readConcurrency, false))
      results.warm_seq_p!.push(await timedReads(t, hotReads, 1, true))
      await db.close()
    }
    {
      const db = await Shoal.open({ dir, rowCacheSize: SIZES.coldCache })
      const t = db.table('stock')
      results.cold_seq!.push(await timedReads(t, coldReads, 1, false))
      results.cold_conc!.push(await timedReads(t, coldReads.slice().reverse(), SIZES.readConcurrency, false))
      await db.close()
    }
  }
  await removeDir(dir)
  m.reads_rows = rows
  m.warm_reads_seq_per_s = median(results.warm_seq!)
  m.warm_reads_concurrent_per_s = median(results.warm_conc!)
  m.warm_reads_seq_with_partition_per_s = median(results.warm_seq_p!)
  m.cold_reads_seq_per_s = median(results.cold_seq!)
  m.cold_reads_concurrent_per_s = median(results.cold_conc!)
  for (const [name, runs] of Object.entries(results)) m[`reads_${name}_runs`] = runs
}

/** 4. Deltas captured on A (puts of new rows, then one price update each), applied on B. */
async function benchRemote(engine: EngineName, m: Metrics): Promise<void> {
  const n = SIZES.remoteRows[engine]
  progress(`${engine}: remote deltas: writing ${n} rows + ${n} updates on replica A`)
  const dirA = await tempDir('remote-a')
  const events: ChangeEvent[] = []
  const a = await Shoal.open({ dir: dirA })
  a.subscribe((e) => events.push(e))
  await a.defineTable(stockSchema(engine))
  const ta = a.table('stock')
  await loadRows(ta, 0, n)
  const putEvents = events.filter((e) => e.table === 'stock').length
  for (let start = 0; start < n; start += CHUNK) {
    const ups: Array<Promise<unknown>> = []
    for (let i = start; i < Math.min(n, start + CHUNK); i++) ups.push(ta.update(skuOf(i), { price: (i % 1000) / 4 + 1 }))
    await Promise.all(ups)
  }
  const statusA = await a.status()
  await a.close()
  await removeDir(dirA)
  const catalog = events.filter((e) => e.table === '_tables')
  const data = events.filter((e) => e.table === 'stock')
  const putDeltas = data.slice(0, putEvents).map((e) => e.delta.length)
  const updateDeltas = data.slice(putEvents).map((e) => e.delta.length)
  m.put_delta_bytes = median(putDeltas)
  m.update_price_delta_bytes = median(updateDeltas)

  const rates: number[] = []
  let converged = true
  for (let run = 0; run < SIZES.runs; run++) {
    progress(`${engine}: remote deltas: applying ${data.length} deltas on replica B, run ${run + 1}/${SIZES.runs}`)
    const dirB = await tempDir('remote-b')
    const b = await Shoal.open({ dir: dirB })
    for (const e of catalog) await b.applyRemoteDelta(e.table, e.partition, e.key, e.delta, 'peer-a')
    const t0 = performance.now()
    await profiled(run === 0 ? PROF_DIR : undefined, `${engine}-remote-apply`, async () => {
      for (let start = 0; start < data.length; start += CHUNK) {
        await Promise.all(data.slice(start, start + CHUNK).map((e) => b.applyRemoteDelta(e.table, e.partition, e.key, e.delta, 'peer-a')))
      }
    }, progress)
    rates.push(rate(data.length, performance.now() - t0))
    const statusB = await b.status()
    const stockA = statusA.tables.find((x) => x.name === 'stock')
    const stockB = statusB.tables.find((x) => x.name === 'stock')
    if (JSON.stringify(stockA) !== JSON.stringify(stockB)) converged = false
    await b.close()
    await removeDir(dirB)
  }
  m.remote_deltas = data.length
  m.remote_deltas_per_s = median(rates)
  m.remote_deltas_per_s_runs = rates
  m.remote_replicas_converged = converged
}

/** 5/6. Encoded sizes, straight from the engine (no store). */
function benchSizes(engine: EngineName, m: Metrics): void {
  progress(`${engine}: encoded sizes`)
  const schema = validateSchema(stockSchema(engine))
  const context = { actor: 'bench-actor' }
  const docs: number[] = []
  const puts: number[] = []
  const updates: number[] = []
  const after100: number[] = []
  for (let i = 0; i < 50; i++) {
    const doc = RowDocument.create(engineFor(engine), context, 'stock', skuOf(i))
    const put = doc.apply({ op: 'put', values: { sku: skuOf(i), ...rowOf(i) } }, schema)
    puts.push(put?.length ?? 0)
    docs.push(doc.encode().length)
    const upd = doc.apply({ op: 'update', values: { price: 99 } }, schema)
    updates.push(upd?.length ?? 0)
    for (let k = 0; k < 99; k++) doc.apply({ op: 'update', values: { price: k } }, schema)
    after100.push(doc.encode().length)
    doc.dispose()
  }
  m.encoded_row_bytes = median(docs)
  m.stored_record_bytes = median(docs) + 18 // record header: format, flags, 16-byte row hash
  m.engine_put_delta_bytes = median(puts)
  m.engine_update_delta_bytes = median(updates)
  m.encoded_row_after_100_updates_bytes = median(after100)
}

// ---- memory and open time (child processes) -------------------------------------------------

interface LoadReport {
  rows: number
  loadSeconds: number
  rowsPerSecond: number
  /** Rate over the second half of the load (after Automerge's WASM heap has stopped growing). */
  secondHalfRowsPerSecond: number
  baselineRss: number
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
  arrayBuffers: number
  maxRss: number
  closeSeconds: number
  diskBytes: number
}

interface OpenReport {
  openMs: number
  statusMs: number
  rows: number
  rssAfterOpen: number
}

async function childLoad(engine: EngineName, rows: number, dir: string): Promise<LoadReport> {
  const { db, t } = await openStock(dir, engine)
  gc()
  const baselineRss = process.memoryUsage().rss
  const t0 = performance.now()
  let nextReport = rows / 10
  // Where the second half of the load began (set from the progress callback).
  const half = { at: 0, done: 0 }
  await loadRows(t, 0, rows, (done) => {
    if (half.done === 0 && done >= rows / 2) Object.assign(half, { at: performance.now(), done })
    if (done >= nextReport) {
      const secs = (performance.now() - t0) / 1000
      progress(`  child: ${engine}: ${done} of ${rows} rows loaded (${Math.round(done / secs)}/s, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB)`)
      nextReport += rows / 10
    }
  })
  const loadSeconds = (performance.now() - t0) / 1000
  const secondHalfRowsPerSecond = half.done === 0 || half.done >= rows ? rows / loadSeconds : (rows - half.done) / ((performance.now() - half.at) / 1000)
  gc()
  const mem = process.memoryUsage()
  const c0 = performance.now()
  await db.close()
  const closeSeconds = (performance.now() - c0) / 1000
  return {
    rows,
    loadSeconds,
    rowsPerSecond: rows / loadSeconds,
    secondHalfRowsPerSecond,
    baselineRss,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
    maxRss: process.resourceUsage().maxRSS * 1024,
    closeSeconds,
    diskBytes: await folderBytes(dir),
  }
}

async function childOpen(dir: string): Promise<OpenReport> {
  const t0 = performance.now()
  const db = await Shoal.open({ dir })
  const t1 = performance.now()
  const status = await db.status()
  const t2 = performance.now()
  const rows = status.tables.reduce((sum, t) => sum + t.rows, 0)
  gc()
  const rssAfterOpen = process.memoryUsage().rss
  await db.close()
  return { openMs: t1 - t0, statusMs: t2 - t1, rows, rssAfterOpen }
}

function runChild<T>(args: string[]): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', THIS_FILE, '--child', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child ${args.join(' ')} exited with ${code}`))
      const last = out.trim().split('\n').pop() ?? ''
      try {
        resolvePromise(JSON.parse(last) as T)
      } catch (error) {
        reject(new Error(`child ${args.join(' ')} printed no result: ${(error as Error).message}`))
      }
    })
  })
}

/** 7/8. RSS after loading 100k / 1M rows (fresh process each), and open time of the 1M folder. */
async function benchMemory(engine: EngineName, m: Metrics): Promise<void> {
  let lastRate: number | null = null
  for (const rows of SIZES.memoryRows) {
    const label = labelOf(rows)
    if (rows >= 1_000_000 && lastRate !== null && rows / lastRate > MAX_1M_SECONDS) {
      const estimate = Math.round(rows / lastRate)
      progress(`${engine}: skipping ${rows} rows: estimated ${estimate} s at ${Math.round(lastRate)} rows/s, the second-half rate of the previous load (limit ${MAX_1M_SECONDS} s)`)
      m[`rss_${label}_skipped`] = `estimated ${estimate} s to load at ${Math.round(lastRate)} rows/s (second-half rate of the ${SIZES.memoryRows[0]}-row load)`
      continue
    }
    const dir = await tempDir(`mem-${label}`)
    try {
      progress(`${engine}: loading ${rows} rows in a child process`)
      const load = await runChild<LoadReport>(['load', engine, String(rows), dir])
      lastRate = load.secondHalfRowsPerSecond
      m[`load_${label}_rows_per_s`] = load.rowsPerSecond
      m[`load_${label}_second_half_rows_per_s`] = load.secondHalfRowsPerSecond
      m[`rss_${label}_mib`] = load.rss / 2 ** 20
      m[`rss_${label}_baseline_mib`] = load.baselineRss / 2 ** 20
      m[`heap_used_${label}_mib`] = load.heapUsed / 2 ** 20
      m[`external_${label}_mib`] = load.external / 2 ** 20
      m[`max_rss_${label}_mib`] = load.maxRss / 2 ** 20
      m[`disk_bytes_per_row_${label}`] = load.diskBytes / rows
      m[`close_${label}_s`] = load.closeSeconds
      {
        const opens: OpenReport[] = []
        for (let run = 0; run < SIZES.openRuns; run++) {
          progress(`${engine}: opening the ${rows}-row folder in a fresh process, run ${run + 1}/${SIZES.openRuns}`)
          opens.push(await runChild<OpenReport>(['open', dir]))
        }
        if (opens.some((o) => o.rows !== rows)) throw new Error(`status() counted ${opens.map((o) => o.rows).join('/')} rows, expected ${rows}`)
        m[`open_${label}_ms`] = median(opens.map((o) => o.openMs))
        m[`status_${label}_ms`] = median(opens.map((o) => o.statusMs))
        m[`open_status_${label}_ms`] = median(opens.map((o) => o.openMs + o.statusMs))
        m[`open_status_${label}_first_ms`] = opens[0]!.openMs + opens[0]!.statusMs
        m[`rss_after_open_${label}_mib`] = median(opens.map((o) => o.rssAfterOpen)) / 2 ** 20
      }
    } finally {
      await removeDir(dir)
    }
  }
}

// ---- report ----------------------------------------------------------------------------------

interface Line {
  label: string
  key: string
  unit: string
  digits?: number
}

function labelOf(rows: number): string {
  return rows >= 1_000_000 ? `${rows / 1_000_000}m` : `${rows / 1000}k`
}

function memoryLines(rows: number): Line[] {
  const l = labelOf(rows)
  const n = rows >= 1_000_000 ? `${rows / 1_000_000}M` : `${rows / 1000}k`
  return [
    { label: `load rate, ${n} rows (child process)`, key: `load_${l}_rows_per_s`, unit: '/s' },
    { label: `  … over the second half of the load`, key: `load_${l}_second_half_rows_per_s`, unit: '/s' },
    { label: `RSS with ${n} rows (after gc)`, key: `rss_${l}_mib`, unit: 'MiB', digits: 0 },
    { label: `  RSS before loading (store open, empty)`, key: `rss_${l}_baseline_mib`, unit: 'MiB', digits: 0 },
    { label: `  peak RSS while loading ${n}`, key: `max_rss_${l}_mib`, unit: 'MiB', digits: 0 },
    { label: `  JS heap used with ${n} rows`, key: `heap_used_${l}_mib`, unit: 'MiB', digits: 0 },
    { label: `disk bytes/row (${n}-row folder)`, key: `disk_bytes_per_row_${l}`, unit: 'B' },
    { label: `open + status(), ${n} rows (fresh process)`, key: `open_status_${l}_ms`, unit: 'ms' },
    { label: `  of which Shoal.open`, key: `open_${l}_ms`, unit: 'ms' },
    { label: `  of which status()`, key: `status_${l}_ms`, unit: 'ms' },
    { label: `  RSS after open + status()`, key: `rss_after_open_${l}_mib`, unit: 'MiB', digits: 0 },
  ]
}

const LINES: Line[] = [
  { label: 'durable writes/s, single (awaited puts)', key: 'single_writes_per_s', unit: '/s' },
  { label: `durable writes/s, batched (chunks of ${CHUNK})`, key: 'batched_writes_per_s', unit: '/s' },
  { label: 'reads/s warm, sequential', key: 'warm_reads_seq_per_s', unit: '/s' },
  { label: `reads/s warm, ${SIZES.readConcurrency} concurrent`, key: 'warm_reads_concurrent_per_s', unit: '/s' },
  { label: '  … warm sequential, get with { partition }', key: 'warm_reads_seq_with_partition_per_s', unit: '/s' },
  { label: `reads/s cold (cache ${SIZES.coldCache}), sequential`, key: 'cold_reads_seq_per_s', unit: '/s' },
  { label: `reads/s cold (cache ${SIZES.coldCache}), ${SIZES.readConcurrency} concurrent`, key: 'cold_reads_concurrent_per_s', unit: '/s' },
  { label: 'remote deltas applied/s (concurrent)', key: 'remote_deltas_per_s', unit: '/s' },
  { label: 'disk bytes/row (batched-write folder)', key: 'disk_bytes_per_row_batched', unit: 'B' },
  { label: 'encoded row document', key: 'encoded_row_bytes', unit: 'B' },
  { label: 'put delta, new row (subscribe event)', key: 'put_delta_bytes', unit: 'B' },
  { label: 'update { price } delta (subscribe event)', key: 'update_price_delta_bytes', unit: 'B' },
  { label: 'encoded row after 100 price updates', key: 'encoded_row_after_100_updates_bytes', unit: 'B' },
  ...SIZES.memoryRows.flatMap(memoryLines),
]

function fmt(value: unknown, digits = 0): string {
  if (typeof value === 'number') return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  if (typeof value === 'string') return 'skipped'
  if (typeof value === 'boolean') return value ? 'yes' : 'NO'
  return '—'
}

function table(results: Partial<Record<EngineName, Metrics>>): string {
  const engines = ENGINES.filter((e) => results[e] !== undefined)
  const header = ['metric', ...engines.map((e) => `${e}`), ...(engines.length === 2 ? ['yjs/automerge'] : [])]
  const rows: string[][] = [header]
  for (const line of LINES) {
    const cells = engines.map((e) => {
      const v = results[e]![line.key]
      const size = /_(\d+[km])(_|$)/.exec(line.key)?.[1]
      if (v === undefined && size !== undefined && typeof results[e]![`rss_${size}_skipped`] === 'string') return 'skipped'
      return v === undefined ? '—' : `${fmt(v, line.digits ?? (line.unit !== 'B' && typeof v === 'number' && v < 100 ? 1 : 0))} ${line.unit}`
    })
    if (cells.every((c) => c === '—')) continue
    if (engines.length === 2) {
      const a = results.yjs![line.key]
      const b = results.automerge![line.key]
      cells.push(typeof a === 'number' && typeof b === 'number' && b !== 0 ? `${(a / b).toFixed(2)}×` : '—')
    }
    rows.push([line.label, ...cells])
  }
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const render = (r: string[]) => '| ' + r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ') + ' |'
  const sep = '|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|'
  return [render(rows[0]!), sep, ...rows.slice(1).map(render)].join('\n')
}

interface Target {
  label: string
  key: string
  ok: (v: number) => boolean
}

const TARGETS: Target[] = [
  { label: '≥ 50,000 durable row writes/s (batched)', key: 'batched_writes_per_s', ok: (v) => v >= 50_000 },
  { label: '≥ 50,000 remote deltas applied/s', key: 'remote_deltas_per_s', ok: (v) => v >= 50_000 },
  { label: '1M rows within 1 GiB RSS', key: 'rss_1m_mib', ok: (v) => v <= 1024 },
  { label: '1M rows opened (open + status) in ≤ 2 s', key: 'open_status_1m_ms', ok: (v) => v <= 2000 },
]

function targetReport(results: Partial<Record<EngineName, Metrics>>): { text: string; json: Record<string, Record<string, string>> } {
  const json: Record<string, Record<string, string>> = {}
  const lines: string[] = []
  for (const target of TARGETS) {
    json[target.label] = {}
    const parts: string[] = []
    for (const engine of ENGINES) {
      const v = results[engine]?.[target.key]
      const verdict = typeof v === 'number' ? (target.ok(v) ? 'MET' : 'MISSED') : 'not measured'
      json[target.label]![engine] = verdict
      parts.push(`${engine}: ${verdict}${typeof v === 'number' ? ` (${fmt(v, v < 100 ? 1 : 0)})` : ''}`)
    }
    lines.push(`- ${target.label}: ${parts.join('; ')}`)
  }
  return { text: lines.join('\n'), json }
}

function machine(): Record<string, string | number> {
  let disk = 'unknown'
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n')
    const root = mounts.find((l) => l.split(' ')[1] === '/')
    if (root !== undefined) disk = `${root.split(' ')[0]} (${root.split(' ')[2]}), tmpdir ${tmpdir()}`
  } catch {
    // not Linux
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    disk,
  }
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (argv[0] === '--child') {
    const [, kind, ...rest] = argv
    const result = kind === 'load' ? await childLoad(rest[0] as EngineName, Number(rest[1]), rest[2]!) : await childOpen(rest[0]!)
    process.stdout.write(JSON.stringify(result) + '\n')
    return
  }
  // Hash of src/**/*.ts at start (the bench script compiles src right before running).
  const SRC_HASH = sourceHash(resolve(dirname(THIS_FILE), '../../src'))
  if ((globalThis as { gc?: unknown }).gc === undefined) progress('note: run with node --expose-gc for stable memory numbers')
  progress(`Shoal storage bench${QUICK ? ' (quick)' : ''}${SKIP_1M ? ', 1M rows skipped' : ''}; engines ${ENGINES.join(', ')}; phases ${[...PHASES].join(', ')}`)
  const results: Partial<Record<EngineName, Metrics>> = {}
  const foreign: Record<string, number | null> = {}
  const runMark = cpuMark()
  for (const engine of ENGINES) {
    const m: Metrics = {}
    results[engine] = m
    const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const mark = cpuMark()
      const result = await fn()
      foreign[`${engine}:${name}`] = foreignCores(mark)
      return result
    }
    if (PHASES.has('sizes')) benchSizes(engine, m)
    if (PHASES.has('single')) await phase('single', () => benchSingle(engine, m))
    let dataset: string | null = null
    if (PHASES.has('batched')) dataset = await phase('batched', () => benchBatched(engine, m))
    if (PHASES.has('reads')) await phase('reads', () => benchReads(engine, m, dataset))
    else if (dataset !== null) await removeDir(dataset)
    if (PHASES.has('remote')) await phase('remote', () => benchRemote(engine, m))
    if (PHASES.has('memory')) await phase('memory', () => benchMemory(engine, m))
  }
  foreign.whole_run = foreignCores(runMark)
  const busiest = Object.entries(foreign).filter(([k, v]) => k !== 'whole_run' && typeof v === 'number' && v >= 0.25)
  const seconds = (performance.now() - started) / 1000
  const targets = targetReport(results)
  const out = [
    '',
    `Shoal storage benchmark — ${new Date().toISOString()} — ${QUICK ? 'quick' : 'full'} run in ${seconds.toFixed(0)} s`,
    `machine: ${Object.entries(machine()).map(([k, v]) => `${k} ${v}`).join(', ')}; src ${SRC_HASH}`,
    `sizes: single ${SIZES.single} rows; batched ${ENGINES.map((e) => `${e} ${SIZES.batched[e]}`).join(', ')} rows (the reads run over these rows: ${SIZES.readOps} gets, hot set ${SIZES.hotSet} with rowCacheSize ${SIZES.warmCache}, cold rowCacheSize ${SIZES.coldCache}); remote ${ENGINES.map((e) => `${e} ${SIZES.remoteRows[e] * 2}`).join(', ')} deltas (puts + updates of ${ENGINES.map((e) => SIZES.remoteRows[e]).join('/')} rows); median of ${SIZES.runs}; ${PARTITIONS} partitions; default rowCacheSize except the reads; syncWrites default (true)`,
    '',
    table(results),
    '',
    'targets:',
    targets.text,
    '',
    `other processes' CPU during the run: ${fmt(foreign.whole_run ?? null, 2)} cores on average (of ${cpus().length})` +
      (busiest.length > 0 ? `; busy neighbours (≥ 0.25 cores) during ${busiest.map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}: treat those numbers with care` : ''),
    '',
  ].join('\n')
  process.stdout.write(out)
  if (SAVE) {
    const dir = resolve(dirname(THIS_FILE), '../../bench/results')
    await mkdir(dir, { recursive: true })
    const date = new Date().toISOString()
    const json = JSON.stringify(
      {
        date,
        command: `node --expose-gc dist/bench/run.js ${argv.join(' ')}`.trim(),
        quick: QUICK,
        complete: COMPLETE,
        skip1m: SKIP_1M,
        seconds,
        srcHash: SRC_HASH,
        machine: machine(),
        sizes: { ...SIZES, partitions: PARTITIONS, chunk: CHUNK },
        results,
        foreignCpuCores: foreign,
        targets: targets.json,
      },
      null,
      2,
    )
    const kind = QUICK ? '-quick' : COMPLETE ? '' : '-partial'
    const name = `store${kind}-${date.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z')}.json`
    await writeFile(join(dir, name), json + '\n')
    if (COMPLETE) await writeFile(join(dir, 'store-latest.json'), json + '\n')
    progress(`wrote bench/results/${name}${COMPLETE ? ' and bench/results/store-latest.json' : ' (store-latest.json is only written by complete runs)'}`)
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
