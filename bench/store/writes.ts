/* Phases single and batched: durable puts of new rows, one awaited at a time, and in concurrent chunks (group commit). */
import { Level } from 'level'
import type { EngineName } from '../../src/index.js'
import { profiled } from '../lib/profile.js'
import { median, rate } from '../lib/stats.js'
import { folderBytes, removeDir, tempDir } from '../lib/temp.js'
import { CHUNK, loadRows, openStock, PROF_DIR, progress, rowOf, SIZES, skuOf, type Metrics } from './config.js'

/** 1. Sequential awaited puts of new rows: one fsync per row. */
export async function benchSingle(engine: EngineName, m: Metrics): Promise<void> {
  const rates: number[] = []
  for (let run = 0; run < SIZES.runs; run++) {
    progress(`${engine}: single durable puts, run ${run + 1}/${SIZES.runs} (${SIZES.single} rows)`)
    const dir = await tempDir('store', 'single')
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
export async function benchBatched(engine: EngineName, m: Metrics): Promise<string | null> {
  const n = SIZES.batched[engine]
  const rates: number[] = []
  const ceilings: number[] = []
  let keep: string | null = null
  for (let run = 0; run < SIZES.runs; run++) {
    progress(`${engine}: batched durable puts, run ${run + 1}/${SIZES.runs} (${n} rows, chunks of ${CHUNK})`)
    const dir = await tempDir('store', 'batched')
    const { db, t } = await openStock(dir, engine)
    const t0 = performance.now()
    await profiled(run === 0 ? PROF_DIR : undefined, `${engine}-batched-puts`, () => loadRows(t, 0, n), progress)
    rates.push(rate(n, performance.now() - t0))
    await db.close()
    const ceiling = await levelCeiling(dir, n)
    ceilings.push(ceiling.rowsPerS)
    m.level_entries_per_row = ceiling.entriesPerRow
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
  m.level_ceiling_rows_per_s = median(ceilings)
  m.level_ceiling_rows_per_s_runs = ceilings
  progress(`${engine}: batched ${Math.round(m.batched_writes_per_s)} rows/s; LevelDB alone writing the same ${(m.level_entries_per_row as number).toFixed(1)} entries a row: ${Math.round(m.level_ceiling_rows_per_s)} rows/s`)
  return keep
}

/**
 * The ceiling under the store: LevelDB alone writing every entry a batched run left (rows,
 * buckets, key index, digest leaves, change feed, meta), in as many durable batches as the run
 * committed. What the store takes beyond it is its own work per row, not LevelDB's.
 */
async function levelCeiling(dataset: string, rows: number): Promise<{ rowsPerS: number; entriesPerRow: number }> {
  const source = new Level<Uint8Array, Uint8Array>(dataset, { keyEncoding: 'view', valueEncoding: 'view' })
  const entries: Array<[Uint8Array, Uint8Array]> = []
  for await (const entry of source.iterator()) entries.push(entry)
  await source.close()
  const per = Math.ceil(entries.length / Math.ceil(rows / CHUNK))
  const dir = await tempDir('store', 'ceiling')
  const target = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await target.open()
  const t0 = performance.now()
  for (let i = 0; i < entries.length; i += per) {
    const batch = target.batch()
    for (let j = i; j < Math.min(entries.length, i + per); j++) batch.put(entries[j]![0], entries[j]![1])
    await batch.write({ sync: true })
  }
  const ms = performance.now() - t0
  await target.close()
  await removeDir(dir)
  return { rowsPerS: rate(rows, ms), entriesPerRow: entries.length / rows }
}
