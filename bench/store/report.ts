/* The store benchmark's report: which metrics, in which order; the table (with yjs ÷ automerge) and the targets. */
import type { EngineName } from '../../src/index.js'
import { fmt as fmtNumber, markdownTable } from '../lib/table.js'
import { targetReport, type Target, type TargetReport } from '../lib/targets.js'
import { CHUNK, ENGINES, SIZES, type Metrics } from './config.js'

/** As bench/lib's fmt, but a string (the reason a size was skipped) shows as `skipped`. */
const fmt = (value: unknown, digits = 0): string => (typeof value === 'string' ? 'skipped' : fmtNumber(value, digits))

interface Line {
  label: string
  key: string
  unit: string
  digits?: number
}

export function labelOf(rows: number): string {
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
  { label: '  … LevelDB alone writing the same entries (rows/s)', key: 'level_ceiling_rows_per_s', unit: '/s' },
  { label: '  … LevelDB entries a row', key: 'level_entries_per_row', unit: '', digits: 1 },
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

export function table(results: Partial<Record<EngineName, Metrics>>): string {
  const engines = ENGINES.filter((e) => results[e] !== undefined)
  // Ratios against Yjs, the default engine, for every other engine measured.
  const others = engines.filter((e) => e !== 'yjs' && engines.includes('yjs'))
  const header = ['metric', ...engines.map((e) => `${e}`), ...others.map((e) => `yjs/${e}`)]
  const rows: string[][] = [header]
  for (const line of LINES) {
    const cells = engines.map((e) => {
      const v = results[e]![line.key]
      const size = /_(\d+[km])(_|$)/.exec(line.key)?.[1]
      if (v === undefined && size !== undefined && typeof results[e]![`rss_${size}_skipped`] === 'string') return 'skipped'
      return v === undefined ? '—' : `${fmt(v, line.digits ?? (line.unit !== 'B' && typeof v === 'number' && v < 100 ? 1 : 0))} ${line.unit}`
    })
    if (cells.every((c) => c === '—')) continue
    for (const other of others) {
      const a = results.yjs![line.key]
      const b = results[other]![line.key]
      cells.push(typeof a === 'number' && typeof b === 'number' && b !== 0 ? `${(a / b).toFixed(2)}×` : '—')
    }
    rows.push([line.label, ...cells])
  }
  return markdownTable(rows)
}

const show = (v: number): string => fmt(v, v < 100 ? 1 : 0)

const TARGETS: Target[] = [
  { label: '≥ 50,000 durable row writes/s (batched)', key: 'batched_writes_per_s', ok: (v) => v >= 50_000, show },
  { label: '≥ 50,000 remote deltas applied/s', key: 'remote_deltas_per_s', ok: (v) => v >= 50_000, show },
  { label: '1M rows within 1 GiB RSS', key: 'rss_1m_mib', ok: (v) => v <= 1024, show },
  { label: '1M rows opened (open + status) in ≤ 2 s', key: 'open_status_1m_ms', ok: (v) => v <= 2000, show },
]

export const targets = (results: Partial<Record<EngineName, Metrics>>): TargetReport => targetReport(TARGETS, results, ENGINES)
