/* The mesh benchmark's settings (from the command line), its data set and the rows it writes. */
import type { EngineName, Table, TableSchema } from '../../src/index.js'
import { parseArgs } from '../lib/args.js'
import { progressLog } from '../lib/progress.js'

export const args = parseArgs()
const { flag, option } = args
export const progress = progressLog('mesh')

export const QUICK = flag('--quick')
/** Run every phase twice, in an open mesh and in a private one, side by side (mesh/trust.ts). */
export const TRUST = flag('--trust')
/**
 * With --trust: run the open and the private pass this many times, alternating, and compare each
 * figure's median (a single pass of a phase moves by ±25 % between runs on a quiet machine).
 */
export const REPEAT = Number(option('--repeat') ?? '1')
if (!Number.isInteger(REPEAT) || REPEAT < 1) throw new Error(`--repeat must be a positive integer, got ${option('--repeat')}`)
export const SAVE = !flag('--no-save')
export const ENGINES = (option('--engines') ?? 'yjs,automerge,columns').split(',') as EngineName[]
const ALL_PHASES = 'latency,throughput,ae'
export const PHASES = new Set((option('--only') ?? ALL_PHASES).split(','))
export const PROF_DIR = option('--cpu-prof-dir')
/** A complete run (every phase, both engines, full sizes) also updates mesh-latest.json. */
export const COMPLETE = !QUICK && !TRUST && option('--only') === undefined && option('--engines') === undefined

/** Partition values: `store` = i % PARTITIONS. */
export const PARTITIONS = 8
/** Concurrent puts per chunk when building a data set (= MAX_WRITES_PER_BATCH: one chunk ≈ one LevelDB batch). */
export const LOAD_CHUNK = 4096
/** Gap between the starts of two latency samples (each also waits for both arrivals). */
export const PACE_MS = 20
/** Rows differing in the anti-entropy rounds. */
export const DIFF_ROWS = 1000

export interface Sizes {
  /** Latency samples per engine, and the rows they update. */
  latencySamples: number
  latencyRows: number
  /** Single-column changes A issues per throughput run, over `throughputRows` rows, in chunks of `throughputChunk`. */
  throughputChanges: Record<EngineName, number>
  throughputRows: number
  throughputChunk: number
  /** Receiver counts of the throughput runs. */
  receivers: number[]
  /** Rows A holds in the anti-entropy phase (Automerge: fewer, its rows load ~8× slower). */
  aeRows: Record<EngineName, number>
  /** Repetitions of the in-sync round. */
  inSyncRounds: number
  /** Window over which the idle mesh's background TCP bytes are measured (subtracted from the byte counts). */
  idleMs: number
}

export const SIZES: Sizes = QUICK
  ? {
      latencySamples: 100,
      latencyRows: 100,
      throughputChanges: { yjs: 3_000, automerge: 1_000, columns: 3_000 },
      throughputRows: 500,
      throughputChunk: 1_000,
      receivers: [2, 5],
      aeRows: { yjs: 10_000, automerge: 6_000, columns: 10_000 },
      inSyncRounds: 3,
      idleMs: 1_000,
    }
  : {
      latencySamples: 500,
      latencyRows: 200,
      throughputChanges: { yjs: 20_000, automerge: 4_000, columns: 20_000 },
      throughputRows: 1_000,
      throughputChunk: 1_000,
      receivers: [2, 5],
      aeRows: { yjs: 100_000, automerge: 10_000, columns: 100_000 },
      inSyncRounds: 5,
      idleMs: 3_000,
    }

export const tableOf = (engine: EngineName): string => `stock_${engine}`

export function stockSchema(engine: EngineName): TableSchema {
  return {
    name: tableOf(engine),
    primaryKey: 'id',
    partitionBy: 'store',
    engine,
    columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' },
  }
}

export const idOf = (prefix: string, i: number): string => `${prefix}${String(i).padStart(7, '0')}`
export const storeOf = (i: number): string => String(i % PARTITIONS)
export const rowOf = (i: number): Record<string, unknown> => ({ store: storeOf(i), sku: `sku-${i % 5000}`, qty: 1 + (i % 50), shelf: `A${i % 40}` })

/** Puts rows [from, from + n) in concurrent chunks of LOAD_CHUNK (group commit). */
export async function loadRows(t: Table, prefix: string, from: number, n: number, onChunk?: (done: number) => void): Promise<void> {
  for (let start = from; start < from + n; start += LOAD_CHUNK) {
    const end = Math.min(from + n, start + LOAD_CHUNK)
    const puts: Array<Promise<unknown>> = []
    for (let i = start; i < end; i++) puts.push(t.put(idOf(prefix, i), rowOf(i)))
    await Promise.all(puts)
    onChunk?.(end - from)
  }
}

/** One engine's results, by metric key. */
export type Metrics = Record<string, number | string | boolean | null | number[]>
