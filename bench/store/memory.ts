/*
 * Phase memory: RSS after loading 100k / 1M rows and the open time of the 1M folder, each in a fresh
 * child process (this same script with --child), so earlier phases do not pollute the numbers.
 */
import { spawn } from 'node:child_process'
import type { EngineName } from '../../src/index.js'
import { Shoal } from '../../src/index.js'
import { gc } from '../lib/memory.js'
import { median } from '../lib/stats.js'
import { folderBytes, removeDir, tempDir } from '../lib/temp.js'
import { loadRows, MAX_1M_SECONDS, openStock, progress, SIZES, type Metrics } from './config.js'
import { labelOf } from './report.js'

export interface LoadReport {
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

export interface OpenReport {
  openMs: number
  statusMs: number
  rows: number
  rssAfterOpen: number
}

export async function childLoad(engine: EngineName, rows: number, dir: string): Promise<LoadReport> {
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

export async function childOpen(dir: string): Promise<OpenReport> {
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
    const child = spawn(process.execPath, ['--expose-gc', process.argv[1]!, '--child', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
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
export async function benchMemory(engine: EngineName, m: Metrics): Promise<void> {
  let lastRate: number | null = null
  for (const rows of SIZES.memoryRows) {
    const label = labelOf(rows)
    if (rows >= 1_000_000 && lastRate !== null && rows / lastRate > MAX_1M_SECONDS) {
      const estimate = Math.round(rows / lastRate)
      progress(`${engine}: skipping ${rows} rows: estimated ${estimate} s at ${Math.round(lastRate)} rows/s, the second-half rate of the previous load (limit ${MAX_1M_SECONDS} s)`)
      m[`rss_${label}_skipped`] = `estimated ${estimate} s to load at ${Math.round(lastRate)} rows/s (second-half rate of the ${SIZES.memoryRows[0]}-row load)`
      continue
    }
    const dir = await tempDir('store', `mem-${label}`)
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
