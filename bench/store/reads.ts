/* Phase reads: random gets of existing rows, warm (the hot set fits the row cache) and cold (a small cache). */
import { Shoal, type EngineName, type Table } from '../../src/index.js'
import { mulberry32 } from '../lib/prng.js'
import { median, rate } from '../lib/stats.js'
import { removeDir, tempDir } from '../lib/temp.js'
import { loadRows, openStock, progress, SIZES, skuOf, storeOf, type Metrics } from './config.js'

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
export async function benchReads(engine: EngineName, m: Metrics, dataset: string | null): Promise<void> {
  let dir = dataset
  const rows = SIZES.batched[engine]
  if (dir === null) {
    progress(`${engine}: loading ${rows} rows for the read phase`)
    dir = await tempDir('store', 'reads')
    const { db, t } = await openStock(dir, engine, { syncWrites: false })
    await loadRows(t, 0, rows)
    await db.close()
  }
  const random = mulberry32(42)
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
