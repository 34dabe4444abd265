/*
 * Chart specifications for the HTML reports: plain data computed here (typed, testable) and
 * handed to the small inline script of report-client.ts, which only maps them onto uPlot.
 */
import type { FaultWindow, SimSummary, SweepPoint, SweepSummary } from '../core/summary.js'

/** How the client formats a value on an axis or in the legend. */
export type ValueFormat = 'count' | 'bytes' | 'ms' | 'seconds'

export interface SeriesSpec {
  label: string
  stroke: string
  /** y scale key, matching one of ChartSpec.axes. */
  scale: string
  format: ValueFormat
  width?: number
  dash?: number[]
  /** Draw a line across nulls (sweep series whose x values another series owns). */
  spanGaps?: boolean
  points?: boolean
  data: Array<number | null>
}

export interface AxisSpec {
  scale: string
  label: string
  format: ValueFormat
  side: 'left' | 'right'
  /** Whole-number ticks only (row and peer counts). */
  integer?: boolean
}

/** A translucent band over [from, to) in x units, labelled on the chart. */
export interface ShadeSpec {
  from: number
  to: number
  label: string
  fill: string
  stroke: string
}

/** A dashed vertical line at x, labelled at the bottom of the plot. */
export interface MarkerSpec {
  x: number
  label: string
  stroke: string
}

export interface ChartSpec {
  /** id of the <div> the chart goes into. */
  id: string
  title: string
  xLabel: string
  xFormat: ValueFormat
  /** Whole-number ticks on a linear x axis (peer counts). */
  xInteger?: boolean
  logX: boolean
  x: number[]
  series: SeriesSpec[]
  axes: AxisSpec[]
  /** Fill between two series, as indexes into `series` (0-based). */
  bands: Array<{ upper: number; lower: number; fill: string }>
  shades: ShadeSpec[]
  markers: MarkerSpec[]
  /** Charts with the same key share the cursor. */
  syncKey: string | null
  height: number
}

/** Above this many peers the divergence chart draws min / median / max instead of one line each. */
export const MAX_PEER_LINES = 30

/** A log x axis once the largest peer count is more than this many times the smallest. */
export const LOG_X_RATIO = 20

const FAULT_PALETTE: ReadonlyArray<readonly [number, number, number]> = [
  [245, 130, 49], // orange
  [230, 25, 75], // red
  [145, 30, 180], // purple
  [67, 99, 216], // blue
  [60, 180, 75], // green
  [154, 99, 36], // brown
  [128, 128, 0], // olive
  [0, 130, 200], // cyan
]

/** One colour per fault kind, in order of first appearance, so every "partition" looks alike. */
export function faultColors(faults: readonly FaultWindow[]): Array<{ fill: string; stroke: string; swatch: string }> {
  const byKind = new Map<string, number>()
  return faults.map((f) => {
    let i = byKind.get(f.kind)
    if (i === undefined) {
      i = byKind.size
      byKind.set(f.kind, i)
    }
    const [r, g, b] = FAULT_PALETTE[i % FAULT_PALETTE.length] ?? [128, 128, 128]
    return {
      fill: `rgba(${r}, ${g}, ${b}, 0.13)`,
      stroke: `rgba(${r}, ${g}, ${b}, 0.55)`,
      swatch: `rgba(${r}, ${g}, ${b}, 0.35)`,
    }
  })
}

/** Distinct line colours for n peers (golden-angle hues). */
export function peerColor(i: number): string {
  const hue = Math.round((i * 137.508) % 360)
  return `hsl(${hue}, 70%, ${i % 2 === 0 ? 40 : 52}%)`
}

export function faultLabel(f: FaultWindow): string {
  return f.detail ? `${f.kind}: ${f.detail}` : f.kind
}

/** Simulation ms at which a fault ends: its `to`, or the end of the run. */
export function faultEnd(f: FaultWindow, summary: Pick<SimSummary, 'durationMs' | 'series'>): number {
  if (f.to !== null) return f.to
  const lastT = summary.series.t.length > 0 ? (summary.series.t[summary.series.t.length - 1] ?? 0) : 0
  return Math.max(summary.durationMs, lastT, f.from)
}

function median(sorted: readonly number[]): number {
  const n = sorted.length
  const mid = Math.floor(n / 2)
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** Per sample: min, median and max over the peers that are up (null where every peer is down). */
export function aggregateDivergence(divergence: ReadonlyArray<ReadonlyArray<number | null>>, samples: number): {
  min: Array<number | null>
  median: Array<number | null>
  max: Array<number | null>
  down: number[]
} {
  const min: Array<number | null> = []
  const med: Array<number | null> = []
  const max: Array<number | null> = []
  const down: number[] = []
  for (let s = 0; s < samples; s++) {
    const live: number[] = []
    for (const row of divergence) {
      const v = row[s]
      if (typeof v === 'number' && Number.isFinite(v)) live.push(v)
    }
    down.push(divergence.length - live.length)
    if (live.length === 0) {
      min.push(null)
      med.push(null)
      max.push(null)
      continue
    }
    live.sort((a, b) => a - b)
    min.push(live[0] as number)
    med.push(median(live))
    max.push(live[live.length - 1] as number)
  }
  return { min, median: med, max, down }
}

/** Whether peer counts spanning [min, max] get a log x axis. */
export function useLogX(xs: readonly number[]): boolean {
  const pos = xs.filter((x) => Number.isFinite(x))
  if (pos.length < 2) return false
  const lo = Math.min(...pos)
  const hi = Math.max(...pos)
  return lo > 0 && hi / lo > LOG_X_RATIO
}

/** Pads or truncates a per-sample array to the number of samples, turning non-finite values into null. */
function fit(values: ReadonlyArray<number | null> | undefined, n: number): Array<number | null> {
  const out: Array<number | null> = []
  for (let i = 0; i < n; i++) {
    const v = values?.[i]
    out.push(typeof v === 'number' && Number.isFinite(v) ? v : null)
  }
  return out
}

function runShades(summary: SimSummary): ShadeSpec[] {
  const colors = faultColors(summary.faults)
  return summary.faults.map((f, i) => ({
    from: f.from / 1000,
    to: faultEnd(f, summary) / 1000,
    label: faultLabel(f),
    fill: colors[i]?.fill ?? 'rgba(128,128,128,0.13)',
    stroke: colors[i]?.stroke ?? 'rgba(128,128,128,0.55)',
  }))
}

function runMarkers(summary: SimSummary): MarkerSpec[] {
  const markers: MarkerSpec[] = []
  if (summary.healedAt !== null) markers.push({ x: summary.healedAt / 1000, label: 'healed', stroke: '#2b6cb0' })
  if (summary.convergedAt !== null) markers.push({ x: summary.convergedAt / 1000, label: 'converged', stroke: '#2f855a' })
  return markers
}

/** The two charts of a run report; empty when the run recorded no samples. */
export function buildRunCharts(summary: SimSummary): ChartSpec[] {
  const s = summary.series
  const n = s.t.length
  if (n === 0) return []
  const x = s.t.map((t) => t / 1000)
  const shades = runShades(summary)
  const markers = runMarkers(summary)
  const peerCount = s.divergence.length

  const divergence: ChartSpec = {
    id: 'chart-divergence',
    title: 'Divergence: rows differing from the converged state',
    xLabel: 'simulation time',
    xFormat: 'seconds',
    logX: false,
    x,
    series: [],
    axes: [{ scale: 'rows', label: 'diverging rows', format: 'count', side: 'left', integer: true }],
    bands: [],
    shades,
    markers,
    syncKey: 'run',
    height: 340,
  }
  if (peerCount > MAX_PEER_LINES) {
    const agg = aggregateDivergence(s.divergence, n)
    const of = `across ${peerCount} peers`
    divergence.series.push(
      { label: `max ${of}`, stroke: '#c53030', scale: 'rows', format: 'count', width: 1, data: agg.max },
      { label: `median ${of}`, stroke: '#1a202c', scale: 'rows', format: 'count', width: 2, data: agg.median },
      { label: `min ${of}`, stroke: '#2b6cb0', scale: 'rows', format: 'count', width: 1, data: agg.min },
      // With one line per peer a gap shows a peer down; here a count on its own axis does.
      { label: 'peers down', stroke: '#718096', scale: 'down', format: 'count', width: 1, dash: [2, 3], data: agg.down },
    )
    divergence.axes.push({ scale: 'down', label: 'peers down', format: 'count', side: 'right', integer: true })
    divergence.bands.push({ upper: 0, lower: 2, fill: 'rgba(113, 128, 150, 0.15)' })
  } else {
    s.divergence.forEach((row, i) => {
      divergence.series.push({
        label: s.peers[i] ?? `p${i}`,
        stroke: peerColor(i),
        scale: 'rows',
        format: 'count',
        width: 1.5,
        data: fit(row, n),
      })
    })
  }

  const traffic: ChartSpec = {
    id: 'chart-traffic',
    title: 'Traffic: all peers together',
    xLabel: 'simulation time',
    xFormat: 'seconds',
    logX: false,
    x,
    series: [
      { label: 'messages/s', stroke: '#2b6cb0', scale: 'msgs', format: 'count', width: 1.5, data: fit(s.messagesPerSec, n) },
      { label: 'bytes/s', stroke: '#dd6b20', scale: 'bytes', format: 'bytes', width: 1.5, dash: [6, 3], data: fit(s.bytesPerSec, n) },
    ],
    axes: [
      { scale: 'msgs', label: 'messages/s', format: 'count', side: 'left' },
      { scale: 'bytes', label: 'bytes/s', format: 'bytes', side: 'right' },
    ],
    bands: [],
    shades,
    markers,
    syncKey: 'run',
    height: 280,
  }
  return [divergence, traffic]
}

const MODE_COLOR: Record<SweepPoint['mode'], string> = { model: '#2b6cb0', real: '#dd6b20' }

/** Sorted distinct peer counts, and per mode one value per peer count (null where that mode has no point). */
function alignByPeers(points: readonly SweepPoint[]): {
  x: number[]
  modes: Array<SweepPoint['mode']>
  pick: (mode: SweepPoint['mode'], value: (p: SweepPoint) => number) => Array<number | null>
} {
  const x = [...new Set(points.map((p) => p.peers))].filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  const modes = (['model', 'real'] as const).filter((m) => points.some((p) => p.mode === m))
  const pick = (mode: SweepPoint['mode'], value: (p: SweepPoint) => number): Array<number | null> =>
    x.map((peers) => {
      const p = points.find((q) => q.mode === mode && q.peers === peers)
      if (p === undefined) return null
      const v = value(p)
      return Number.isFinite(v) ? v : null
    })
  return { x, modes, pick }
}

/** The two charts of a sweep report; empty when the sweep has no points. */
export function buildSweepCharts(sweep: SweepSummary): ChartSpec[] {
  const { x, modes, pick } = alignByPeers(sweep.points)
  if (x.length === 0) return []
  const logX = useLogX(x)
  const common = { xLabel: 'peers', xFormat: 'count' as const, xInteger: true, logX, x, bands: [], shades: [], markers: [], syncKey: null }
  const line = { spanGaps: true, points: true, width: 2 }

  const converge: ChartSpec = {
    ...common,
    id: 'chart-converge',
    title: 'Time to converge after heal vs peers',
    series: modes.flatMap((m): SeriesSpec[] => [
      { ...line, label: `${m} p50`, stroke: MODE_COLOR[m], scale: 'ms', format: 'ms', data: pick(m, (p) => p.convergeMs.p50) },
      { ...line, label: `${m} p99`, stroke: MODE_COLOR[m], scale: 'ms', format: 'ms', dash: [6, 4], data: pick(m, (p) => p.convergeMs.p99) },
    ]),
    axes: [{ scale: 'ms', label: 'time to converge', format: 'ms', side: 'left' }],
    height: 320,
  }
  const traffic: ChartSpec = {
    ...common,
    id: 'chart-sweep-traffic',
    title: 'Traffic per run (p50) vs peers',
    series: modes.flatMap((m): SeriesSpec[] => [
      { ...line, label: `${m} messages p50`, stroke: MODE_COLOR[m], scale: 'msgs', format: 'count', data: pick(m, (p) => p.messages.p50) },
      { ...line, label: `${m} bytes p50`, stroke: MODE_COLOR[m], scale: 'bytes', format: 'bytes', dash: [6, 4], data: pick(m, (p) => p.bytes.p50) },
    ]),
    axes: [
      { scale: 'msgs', label: 'messages', format: 'count', side: 'left' },
      { scale: 'bytes', label: 'bytes', format: 'bytes', side: 'right' },
    ],
    height: 320,
  }
  return [converge, traffic]
}
