/* Phases remote and sizes: deltas captured on one replica and applied on another; encoded sizes straight from the engines. */
import { Shoal, validateSchema, type ChangeEvent, type EngineName } from '../../src/index.js'
import { engineFor } from '../../src/table/engines.js'
import { RowDocument } from '../../src/table/row.js'
import { profiled } from '../lib/profile.js'
import { median, rate } from '../lib/stats.js'
import { removeDir, tempDir } from '../lib/temp.js'
import { CHUNK, loadRows, PROF_DIR, progress, rowOf, SIZES, skuOf, stockSchema, type Metrics } from './config.js'

/** 4. Deltas captured on A (puts of new rows, then one price update each), applied on B. */
export async function benchRemote(engine: EngineName, m: Metrics): Promise<void> {
  const n = SIZES.remoteRows[engine]
  progress(`${engine}: remote deltas: writing ${n} rows + ${n} updates on replica A`)
  const dirA = await tempDir('store', 'remote-a')
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
    const dirB = await tempDir('store', 'remote-b')
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
export function benchSizes(engine: EngineName, m: Metrics): void {
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
