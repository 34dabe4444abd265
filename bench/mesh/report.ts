/* The mesh benchmark's report: which metrics, in which order, with which targets; the table and the verdicts. */
import { cpus } from 'node:os'
import type { EngineName } from '../../src/index.js'
import { fmt, markdownTable } from '../lib/table.js'
import { targetReport, type Target, type TargetReport } from '../lib/targets.js'
import { DIFF_ROWS, ENGINES, SIZES, type Metrics } from './config.js'

interface Line {
  label: string
  key: string
  unit: string
  digits?: number
  target?: { text: string; ok: (v: number) => boolean }
}

const perRecv = (r: number): Line[] => [
  { label: `replicated changes/s, A → ${r} peers (all converged)`, key: `tp${r}_changes_per_s`, unit: '/s' },
  { label: `  A's own write rate meanwhile`, key: `tp${r}_local_changes_per_s`, unit: '/s' },
  { label: `  seconds until the last peer converged`, key: `tp${r}_seconds`, unit: 's', digits: 1 },
  { label: `  … the first peer`, key: `tp${r}_first_peer_seconds`, unit: 's', digits: 1 },
  { label: `  rows repaired by anti-entropy meanwhile`, key: `tp${r}_repaired_by_anti_entropy`, unit: '' },
  { label: `  this process's CPU (cores of ${cpus().length})`, key: `tp${r}_process_cpu_cores`, unit: '', digits: 2 },
]

export function lines(): Line[] {
  const n = (e: number) => (e >= 1000 ? `${e / 1000}k` : String(e))
  return [
    { label: 'latency A → B, p50 (update call → ChangeEvent on B)', key: 'latency_b_p50_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → B, p99', key: 'latency_b_p99_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → B, max', key: 'latency_b_max_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → C, p50', key: 'latency_c_p50_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → C, p99', key: 'latency_c_p99_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → C, max', key: 'latency_c_max_ms', unit: 'ms', digits: 1 },
    { label: '  of which: committed on A (its ChangeEvent), p50', key: 'latency_a_commit_p50_ms', unit: 'ms', digits: 1 },
    { label: '  … gossip message arrived at B, p50', key: 'latency_b_message_p50_ms', unit: 'ms', digits: 1 },
    { label: '  … gossip message at B, p99', key: 'latency_b_message_p99_ms', unit: 'ms', digits: 1 },
    { label: '  samples lost (not seen within 10 s)', key: 'latency_lost', unit: '' },
    ...SIZES.receivers.flatMap(perRecv),
    { label: 'single change, paced: engine delta', key: 'paced_delta_bytes', unit: 'B' },
    { label: 'single change, paced: deltas per gossip message', key: 'paced_deltas_per_message', unit: '', digits: 2 },
    { label: 'single change, paced: Shoal gossip message', key: 'paced_gossip_bytes_per_change', unit: 'B', digits: 1 },
    { label: "single change, paced: TCP bytes from A's sockets (to 2 peers)", key: 'paced_wire_writer_bytes_per_change', unit: 'B' },
    { label: 'single change, paced: TCP bytes, whole 3-peer mesh', key: 'paced_wire_mesh_bytes_per_change', unit: 'B' },
    ...SIZES.receivers.flatMap((r): Line[] => [
      { label: `coalesced burst (A → ${r}): deltas per gossip message`, key: `burst${r}_deltas_per_message`, unit: '', digits: 1 },
      { label: `coalesced burst (A → ${r}): Shoal gossip bytes per change`, key: `burst${r}_gossip_bytes_per_change`, unit: 'B', digits: 1 },
      { label: `coalesced burst (A → ${r}): TCP bytes from A's sockets per change`, key: `burst${r}_wire_writer_bytes_per_change`, unit: 'B', digits: 1 },
      { label: `coalesced burst (A → ${r}): TCP bytes, whole mesh, per change`, key: `burst${r}_wire_mesh_bytes_per_change`, unit: 'B', digits: 1 },
    ]),
    { label: 'anti-entropy data set (rows on A)', key: 'ae_rows', unit: '' },
    { label: '  A writing them locally (chunks of 4096)', key: 'ae_a_local_puts_per_s', unit: '/s' },
    { label: 'initial load into an empty peer', key: 'initial_load_rows_per_s', unit: 'rows/s', target: { text: '≥ 50,000 rows/s', ok: (v) => v >= 50_000 } },
    { label: '  seconds', key: 'initial_load_seconds', unit: 's', digits: 1 },
    { label: '  sync protocol bytes per row', key: 'initial_load_sync_bytes_per_row', unit: 'B' },
    { label: '  TCP bytes per row (all sockets)', key: 'initial_load_wire_bytes_per_row', unit: 'B' },
    { label: 'in-sync round (B → A), bytes', key: 'insync_round_bytes', unit: 'B', target: { text: '≤ 2 KB', ok: (v) => v <= 2048 } },
    { label: 'in-sync round (B → A), time (median)', key: 'insync_round_ms', unit: 'ms', digits: 1, target: { text: '≤ 50 ms', ok: (v) => v <= 50 } },
    ...(['upd', 'new'] as const).flatMap((k): Line[] => {
      const what = k === 'upd' ? `${n(DIFF_ROWS)} updated rows` : `${n(DIFF_ROWS)} new rows`
      return [
        { label: `${what}: round time${k === 'upd' ? ' (first descent: loads the digest trees)' : ''}`, key: `diff_${k}_round_ms`, unit: 'ms', digits: 0 },
        ...(k === 'upd' ? [{ label: `${what}: round time, trees cached (another 1k rows)`, key: 'diff_upd_warm_round_ms', unit: 'ms', digits: 0 }] : []),
        { label: `${what}: round bytes`, key: `diff_${k}_round_bytes`, unit: 'B' },
        { label: `${what}: payload (${k === 'upd' ? 'the change deltas' : 'encoded rows'})`, key: `diff_${k}_payload_bytes`, unit: 'B' },
        { label: `${what}: round bytes ÷ payload`, key: `diff_${k}_ratio`, unit: '×', digits: 2 },
        { label: `${what}: rows received by B`, key: `diff_${k}_rows_received`, unit: '' },
        { label: `${what}: rows B pushed to A`, key: `diff_${k}_rows_sent`, unit: '' },
        { label: `${what}: … of them changing A`, key: `diff_${k}_changed_there`, unit: '' },
        { label: `${what}: partitions settled by the change feed (of those differing)`, key: `diff_${k}_by_feed`, unit: '' },
        { label: `${what} (shadow): tree + hash/key lists`, key: `diff_${k}_shadow_tree_bytes`, unit: 'B', target: { text: '≤ 40 KB', ok: (v) => v <= 40_000 } },
        { label: `${what} (shadow): row frames`, key: `diff_${k}_shadow_row_frame_bytes`, unit: 'B' },
        { label: `${what} (shadow): row frames ÷ payload`, key: `diff_${k}_row_frames_ratio`, unit: '×', digits: 2, target: { text: '≤ 1.5× (+ hashes)', ok: (v) => v <= 1.5 } },
      ]
    }),
    { label: 'peak RSS of the whole process (all peers)', key: 'peak_rss_mib', unit: 'MiB' },
  ]
}

function verdict(line: Line, v: unknown): string {
  if (line.target === undefined) return ''
  return typeof v === 'number' ? (line.target.ok(v) ? 'met' : 'MISSED') : '—'
}

/** The results table: a row a metric, a column an engine (or engine + trust), then the target and each open-mesh verdict. */
export function table(results: Readonly<Record<string, Metrics>>): string {
  const columns = ENGINES.flatMap((e) => [e, `${e}+trust`]).filter((c) => results[c] !== undefined)
  const judged = columns.filter((c) => !c.endsWith('+trust'))
  const header = ['metric', ...columns, 'target', 'verdict']
  const rows: string[][] = [header]
  for (const line of lines()) {
    const values = columns.map((c) => results[c]![line.key])
    if (values.every((v) => v === undefined)) continue
    const cells = values.map((v) => (v === undefined ? '—' : `${fmt(v, line.digits ?? 0)}${line.unit === '' ? '' : ` ${line.unit}`}`))
    const verdicts = line.target === undefined ? '' : judged.map((c) => verdict(line, results[c]![line.key])).join(' / ')
    rows.push([line.label, ...cells, line.target?.text ?? '', verdicts])
  }
  return markdownTable(rows, (c) => c === 0 || c >= header.length - 2)
}

/** What trust may cost (issue 12): at most 20% slower, at most 30% more bytes. */
const TRUST_RATIOS: Array<{ label: string; key: string; kind: 'time' | 'rate' | 'bytes' }> = [
  { label: 'latency A → B, p50', key: 'latency_b_p50_ms', kind: 'time' },
  { label: 'latency A → B, p99', key: 'latency_b_p99_ms', kind: 'time' },
  ...SIZES.receivers.map((r) => ({ label: `replicated changes/s, A → ${r} peers`, key: `tp${r}_changes_per_s`, kind: 'rate' as const })),
  { label: 'single change, paced: TCP bytes, whole mesh', key: 'paced_wire_mesh_bytes_per_change', kind: 'bytes' },
  ...SIZES.receivers.map((r) => ({ label: `coalesced burst (A → ${r}): TCP bytes, whole mesh, per change`, key: `burst${r}_wire_mesh_bytes_per_change`, kind: 'bytes' as const })),
  { label: 'initial load into an empty peer, rows/s', key: 'initial_load_rows_per_s', kind: 'rate' },
  { label: 'initial load, TCP bytes per row', key: 'initial_load_wire_bytes_per_row', kind: 'bytes' },
  { label: 'in-sync round bytes', key: 'insync_round_bytes', kind: 'bytes' },
  { label: `${DIFF_ROWS} updated rows: round bytes`, key: 'diff_upd_round_bytes', kind: 'bytes' },
  { label: `${DIFF_ROWS} new rows: round bytes`, key: 'diff_new_round_bytes', kind: 'bytes' },
]

/** Trust on ÷ trust off per engine, judged against the issue's budget (slower: a time ratio or the inverse of a rate ratio). */
export function trustTable(results: Readonly<Record<string, Metrics>>): { text: string; json: Record<string, Record<string, number | null>> } {
  const engines = ENGINES.filter((e) => results[e] !== undefined && results[`${e}+trust`] !== undefined)
  const rows: string[][] = [['trust on ÷ off', ...engines, 'budget', 'verdict']]
  const json: Record<string, Record<string, number | null>> = {}
  for (const line of TRUST_RATIOS) {
    const ratios = engines.map((e) => {
      const off = results[e]![line.key]
      const on = results[`${e}+trust`]![line.key]
      return typeof off === 'number' && typeof on === 'number' && off > 0 ? on / off : null
    })
    if (ratios.every((r) => r === null)) continue
    const cost = (r: number): number => (line.kind === 'rate' ? 1 / r : r)
    const budget = line.kind === 'bytes' ? 1.3 : 1.2
    const verdicts = ratios.map((r) => (r === null ? '—' : cost(r) <= budget ? 'met' : 'MISSED'))
    rows.push([line.label, ...ratios.map((r) => (r === null ? '—' : `×${r.toFixed(2)}`)), line.kind === 'bytes' ? '≤ ×1.30 bytes' : line.kind === 'rate' ? '≥ ×0.83 (≤ 20% slower)' : '≤ ×1.20', verdicts.join(' / ')])
    json[line.key] = Object.fromEntries(engines.map((e, i) => [e, ratios[i] ?? null]))
  }
  return { text: markdownTable(rows, (c) => c === 0 || c >= engines.length + 1), json }
}

/** The lines with a target, judged per engine (with the anti-entropy data set each engine's verdict stands on). */
export function targets(results: Partial<Record<EngineName, Metrics>>): TargetReport {
  const judged: Target[] = lines().flatMap((line) =>
    line.target === undefined ? [] : [{ label: `${line.label}: ${line.target.text}`, key: line.key, ok: line.target.ok, show: (v: number) => `${fmt(v, line.digits ?? 0)} ${line.unit}` }],
  )
  return targetReport(judged, results, ENGINES, (engine) => {
    const rows = results[engine as EngineName]?.ae_rows
    return typeof rows === 'number' ? ` (${rows} rows)` : ''
  })
}
