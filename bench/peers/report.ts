/*
 * The peers benchmark's report: medians per system and workload, the tables (with Shoal ÷ each
 * system), the chart, and where they are written (bench/results/, and bench/README.md between its
 * peers-results markers after a full run).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { repoRoot, resultsDir, srcHash, writeResults } from '../lib/results.js'
import { median } from '../lib/stats.js'
import { fmt } from '../lib/table.js'
import { renderChart } from './chart.js'
import { args, DEADLINE_MS, HOT, label, N, STEADY_DEADLINE_MS, STEADY_ROWS, STEADY_SECONDS, WORKLOADS, type Group, type WorkloadId } from './config.js'
import { isDnf, type ChildResult, type Outcome, type WorkloadResult } from './measure.js'

export interface WorkloadSummary {
  runs: number
  converge_ms: number
  local_commit_ms: number
  wire_bytes: number
  peak_rss_bytes: number
  equal: boolean
  expected: boolean
  restart_ms?: number
  steady_bytes_per_min?: number
  /** Set when a run did not finish (the medians then cover the finished runs only, if any). */
  dnf?: string
}

export interface SystemSummary {
  system: string
  topology?: string
  notes?: string
  start_ms: number
  idle_wire_bytes_per_s: number
  max_rss_bytes: number
  workloads: Partial<Record<WorkloadId, WorkloadSummary>>
  /** Groups not run, and why. */
  not_run: Partial<Record<WorkloadId, string>>
  raw: ChildResult[]
}

export function summarize(system: string, results: ChildResult[], notRun: Partial<Record<WorkloadId, string>>): SystemSummary {
  const first = results[0]
  const workloads: SystemSummary['workloads'] = {}
  for (const w of WORKLOADS) {
    const outcomes = results.map((r) => r.workloads[w]).filter((o): o is Outcome => o !== undefined)
    if (outcomes.length === 0) continue
    const done = outcomes.filter((o): o is WorkloadResult => !isDnf(o))
    const dnf = outcomes.find(isDnf)
    const m = (f: (r: WorkloadResult) => number | undefined): number => median(done.map((r) => f(r) ?? NaN))
    workloads[w] = {
      runs: done.length,
      converge_ms: m((r) => r.converge_ms),
      local_commit_ms: m((r) => r.local_commit_ms),
      wire_bytes: m((r) => r.wire_bytes),
      peak_rss_bytes: m((r) => r.peak_rss_bytes),
      equal: done.every((r) => r.equal),
      expected: done.every((r) => r.expected),
      ...(w === 'w5' ? { restart_ms: m((r) => r.restart_ms) } : {}),
      ...(w === 'w6' ? { steady_bytes_per_min: m((r) => r.steady_bytes_per_min) } : {}),
      ...(dnf === undefined ? {} : { dnf: dnf.dnf }),
    }
  }
  const pair = results.filter((r) => r.group === 'pair')
  return {
    system: first?.system ?? system,
    ...(first?.topology === undefined ? {} : { topology: first.topology }),
    ...(first?.notes === undefined ? {} : { notes: first.notes }),
    start_ms: median(pair.map((r) => r.start_ms)),
    idle_wire_bytes_per_s: median(pair.map((r) => r.idle_wire_bytes_per_s)),
    max_rss_bytes: Math.max(0, ...results.map((r) => r.max_rss_bytes)),
    workloads,
    not_run: notRun,
    raw: results,
  }
}

export const seconds = (ms: number): string => (ms >= 10_000 ? fmt(ms / 1000, 1) : fmt(ms / 1000, 2))

interface Metric {
  title: string
  unit: string
  value: (w: WorkloadSummary) => number | undefined
  show: (v: number) => string
  workloads: WorkloadId[]
}

const METRICS: Metric[] = [
  { title: 'Convergence time (s)', unit: 's', value: (w) => w.converge_ms, show: seconds, workloads: WORKLOADS },
  { title: 'Bytes on the wire (MB, all peers, both directions)', unit: 'MB', value: (w) => w.wire_bytes, show: (v) => fmt(v / 1e6, 2), workloads: WORKLOADS },
  { title: 'Peak RSS of the process holding all peers (MB)', unit: 'MB', value: (w) => w.peak_rss_bytes, show: (v) => fmt(v / 1e6, 0), workloads: WORKLOADS },
]

function cell(s: SystemSummary, w: WorkloadId, metric: Metric, shoal: SystemSummary | undefined): string {
  const ws = s.workloads[w]
  if (ws === undefined) return s.not_run[w] === undefined ? '—' : 'not run'
  if (ws.dnf !== undefined || ws.runs === 0) return 'DNF'
  const v = metric.value(ws)
  if (v === undefined || !Number.isFinite(v)) return '—'
  const text = metric.show(v) + (ws.equal && ws.expected ? '' : ' ⚠')
  const mine = shoal?.workloads[w]
  if (shoal === undefined || s === shoal || mine === undefined || mine.dnf !== undefined) return text
  const ratio = metric.value(mine)
  return ratio === undefined || !Number.isFinite(ratio) || v === 0 ? text : `${text} (${fmt(ratio / v, 2)}×)`
}

export function tables(summaries: SystemSummary[]): string {
  const shoal = summaries.find((s) => s.system === 'shoal')
  const out: string[] = []
  for (const metric of METRICS) {
    const ws = metric.workloads.filter((w) => summaries.some((s) => s.workloads[w] !== undefined))
    out.push(`**${metric.title}** — in brackets: Shoal ÷ that system (below 1 = Shoal better)`, '')
    out.push(`| system | ${ws.map((w) => label(w)).join(' | ')} |`, `|---|${ws.map(() => '--:').join('|')}|`)
    for (const s of summaries) out.push(`| ${s.system} | ${ws.map((w) => cell(s, w, metric, shoal)).join(' | ')} |`)
    out.push('')
  }
  out.push('**Steady state and idle** — bytes on the wire while peers are in sync', '')
  out.push(`| system | idle, empty (B/s) | in sync with ${fmt(STEADY_ROWS)} rows (KB/min) | start (ms) |`, '|---|--:|--:|--:|')
  for (const s of summaries) {
    const w6 = s.workloads.w6
    const steady = w6 === undefined ? (s.not_run.w6 === undefined ? '—' : 'not run') : w6.dnf !== undefined ? 'DNF' : fmt((w6.steady_bytes_per_min ?? NaN) / 1000, 1)
    const mine = shoal?.workloads.w6?.steady_bytes_per_min
    const ratio = s !== shoal && mine !== undefined && w6?.steady_bytes_per_min !== undefined && w6.steady_bytes_per_min > 0 ? ` (${fmt(mine / w6.steady_bytes_per_min, 1)}×)` : ''
    out.push(`| ${s.system} | ${fmt(s.idle_wire_bytes_per_s)} | ${steady}${ratio} | ${fmt(s.start_ms)} |`)
  }
  out.push('')
  const problems: string[] = []
  for (const s of summaries) {
    for (const w of WORKLOADS) {
      const ws = s.workloads[w]
      if (ws?.dnf !== undefined) problems.push(`- ${s.system}, ${label(w)}: DNF — ${ws.dnf}${ws.runs > 0 ? ` (${ws.runs} other run(s) finished)` : ''}`)
      else if (ws !== undefined && !(ws.equal && ws.expected)) problems.push(`- ${s.system}, ${label(w)}: ⚠ final states ${ws.equal ? 'equal but not as expected' : 'NOT equal'}`)
      const why = s.not_run[w]
      if (why !== undefined) problems.push(`- ${s.system}, ${label(w)}: not run — ${why}`)
    }
  }
  if (problems.length > 0) out.push(...problems, '')
  return out.join('\n')
}

export function chart(summaries: SystemSummary[], note: string): string {
  const ws = WORKLOADS.filter((w) => summaries.some((s) => s.workloads[w] !== undefined))
  return renderChart({
    title: `Time to convergence per workload (median; lower is better; log scale)`,
    workloads: ws.map((w) => label(w)),
    series: summaries.map((s) => ({
      system: s.system,
      values: ws.map((w) => {
        const x = s.workloads[w]
        return x === undefined || x.dnf !== undefined || x.runs === 0 ? null : x.converge_ms / 1000
      }),
    })),
    dnfLabels: summaries.map((s) => ws.map((w) => (s.workloads[w]?.dnf !== undefined ? `DNF (> ${(DEADLINE_MS / 1000).toFixed(0)} s or failed)` : 'not run'))),
    note,
  })
}

export interface RunInfo {
  /** Every system and group, default sizes and run count: replaces peers-latest.* and the README's table. */
  full: boolean
  runs: number
  warmup: boolean
  groups: Group[]
  /** Other processes' CPU during the run, in average cores. */
  foreign: number | null
  save: boolean
  updateReadme: boolean
}

/** Prints the tables; writes the JSON and the chart, and (full runs, or --update-readme) the README's results block. */
export async function publish(summaries: SystemSummary[], run: RunInfo): Promise<void> {
  const { full, runs, warmup, groups, foreign } = run
  const date = new Date().toISOString()
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${fmt(totalmem() / 2 ** 30, 1)} GiB, Node ${process.version}`
  const text = tables(summaries)
  console.log(
    `\nPeers benchmark — ${date.slice(0, 16)}Z, ${machine}; ${N} rows (steady ${STEADY_ROWS}); medians of ${runs} run(s)${warmup ? ' after a warm-up' : ''}; other processes used ${foreign === null ? '?' : fmt(foreign, 2)} cores on average\n`,
  )
  console.log(text)
  for (const s of summaries) console.log(`${s.system}: ${s.topology ?? ''}. ${s.notes ?? ''}`)
  if (!run.save) return
  const root = repoRoot()
  const argv = args.argv
  const json = {
    date,
    machine,
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memory_bytes: totalmem(),
    source_sha256: srcHash(),
    foreign_cores: foreign,
    command: `npm run bench:peers${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    settings: { rows: N, hot_rows: HOT, steady_rows: STEADY_ROWS, steady_seconds: STEADY_SECONDS, deadline_s: DEADLINE_MS / 1000, steady_deadline_s: STEADY_DEADLINE_MS / 1000, runs, warmup, groups },
    full,
    systems: summaries,
  }
  const files = await writeResults('peers', full ? 'full' : 'partial', json, new Date(date))
  console.log(`wrote ${files.join(' and ')}`)
  const file = files[0]!
  const note = `${machine}; ${date.slice(0, 10)}; npm run bench:peers`
  const svgName = full ? 'peers-latest.svg' : file.split('/').pop()!.replace(/\.json$/, '.svg')
  await writeFile(join(resultsDir(), svgName), chart(summaries, note))
  console.log(`wrote bench/results/${svgName}`)
  if (!full && !run.updateReadme) {
    console.log('partial run (not every system, group, default size and run count): bench/README.md and peers-latest.* left as they are')
    return
  }
  const readme = join(root, 'bench/README.md')
  const START = '<!-- peers-results:start -->'
  const END = '<!-- peers-results:end -->'
  const current = await readFile(readme, 'utf8')
  const i = current.indexOf(START)
  const j = current.indexOf(END)
  if (i < 0 || j < i) {
    console.log(`bench/README.md has no ${START} … ${END} markers: not updated`)
    return
  }
  const block = [
    START,
    `Latest run: ${date.slice(0, 16).replace('T', ' ')} UTC on ${machine}; \`${json.command}\`; ${N} rows, hot set ${HOT}, steady ${fmt(STEADY_ROWS)} rows for ${STEADY_SECONDS} s;`,
    `medians of ${runs} runs${warmup ? ' after a warm-up' : ''} (steady: one run, median of three windows); other processes used ${foreign === null ? '?' : fmt(foreign, 2)} cores on average during the run. Raw numbers: \`bench/results/${file.split('/').pop()}\`.`,
    '',
    `![Time to convergence per workload and system](results/${svgName})`,
    '',
    text,
    END,
  ].join('\n')
  await writeFile(readme, current.slice(0, i) + block + current.slice(j + END.length))
  console.log('updated bench/README.md')
}
