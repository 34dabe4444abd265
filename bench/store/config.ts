/* The store benchmark's settings (from the command line), its table and the rows it writes. */
import { Shoal, type EngineName, type Table, type TableSchema } from '../../src/index.js'
import { parseArgs } from '../lib/args.js'
import { progressLog } from '../lib/progress.js'

export const args = parseArgs()
const { flag, option } = args
export const progress = progressLog('bench')

export const QUICK = flag('--quick')
export const SKIP_1M = QUICK || flag('--skip-1m') || process.env.SHOAL_BENCH_SKIP_1M === '1'
export const SAVE = !flag('--no-save')
export const ENGINES = (option('--engines') ?? 'yjs,automerge,columns').split(',') as EngineName[]
const ALL_PHASES = 'sizes,single,batched,reads,remote,memory'
export const PHASES = new Set((option('--only') ?? ALL_PHASES).split(','))
export const PROF_DIR = option('--cpu-prof-dir')
/** A complete run (every phase, both engines, full sizes, 1M rows) also updates store-latest.json. */
export const COMPLETE = !QUICK && !SKIP_1M && option('--only') === undefined && option('--engines') === undefined

/** Rows per partition value: `store` = i % PARTITIONS. */
export const PARTITIONS = 8
/** Concurrent puts issued per Promise.all chunk; equals MAX_WRITES_PER_BATCH, so one chunk ≈ one LevelDB batch. */
export const CHUNK = 4096
/** If loading 1M Automerge rows is estimated to take longer than this (from the 100k rate), skip it. */
export const MAX_1M_SECONDS = 360

export interface Sizes {
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

export const SIZES: Sizes = QUICK
  ? {
      runs: 1,
      single: 200,
      batched: { yjs: 5_000, automerge: 5_000, columns: 5_000 },
      readOps: 2_000,
      hotSet: 1_000,
      warmCache: 20_000,
      coldCache: 200,
      readConcurrency: 256,
      remoteRows: { yjs: 2_000, automerge: 2_000, columns: 2_000 },
      memoryRows: [10_000],
      openRuns: 1,
    }
  : {
      runs: 3,
      single: 2_000,
      // Automerge is ~10× slower per row (and slower still while its WASM heap grows): fewer rows keep the run short.
      batched: { yjs: 50_000, automerge: 10_000, columns: 50_000 },
      readOps: 20_000,
      hotSet: 5_000,
      warmCache: 100_000,
      coldCache: 1_000,
      readConcurrency: 256,
      remoteRows: { yjs: 25_000, automerge: 5_000, columns: 25_000 },
      memoryRows: SKIP_1M ? [100_000] : [100_000, 1_000_000],
      openRuns: 3,
    }


export function stockSchema(engine: EngineName): TableSchema {
  return {
    name: 'stock',
    primaryKey: 'sku',
    partitionBy: 'store',
    engine,
    // The columns engine has no text cells: its table is the same without `notes`.
    columns: { sku: 'string', store: 'string', name: 'string', price: 'number', qty: 'counter', ...(engine === 'columns' ? {} : { notes: 'text' as const }) },
  }
}

export const skuOf = (i: number): string => `sku${String(i).padStart(7, '0')}`
export const storeOf = (i: number): string => String(i % PARTITIONS)
export const rowOf = (i: number): Record<string, unknown> => ({ store: storeOf(i), name: `Widget ${i}`, price: (i % 1000) / 4, qty: 1 + (i % 50) })

export async function openStock(dir: string, engine: EngineName, options: { rowCacheSize?: number; syncWrites?: boolean } = {}): Promise<{ db: Shoal; t: Table }> {
  const db = await Shoal.open({ dir, ...options })
  await db.defineTable(stockSchema(engine))
  return { db, t: db.table('stock') }
}

/** Puts rows [from, from + n) in concurrent chunks of CHUNK (group commit). */
export async function loadRows(t: Table, from: number, n: number, onChunk?: (done: number) => void): Promise<void> {
  for (let start = from; start < from + n; start += CHUNK) {
    const end = Math.min(from + n, start + CHUNK)
    const puts: Array<Promise<unknown>> = []
    for (let i = start; i < end; i++) puts.push(t.put(skuOf(i), rowOf(i)))
    await Promise.all(puts)
    onChunk?.(end - from)
  }
}

/** One engine's results; `*_runs` arrays hold every repetition behind a median. */
export type Metrics = Record<string, number | string | boolean | null | number[]>
