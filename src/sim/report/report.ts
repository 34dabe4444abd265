/*
 * Self-contained HTML reports of simulation runs and sweeps, drawn from their JSON summaries
 * (summary.ts). A report opens offline: the plotting library's JS and CSS are inlined, the data is
 * embedded as JSON in <script type="application/json" id="shoal-data"> (the summary as-is) and
 * id="shoal-charts" (chart specifications, report-data.ts), and a small inline script
 * (report-client.ts) draws the charts. A Content-Security-Policy forbids every network request.
 *
 * Plotting library: uPlot (MIT, no dependencies). One IIFE file of about 50 kB minified plus
 * 2 kB of CSS, so inlining it keeps reports small; it is fast with many long series (a run can
 * have thousands of samples for dozens of peers), has time-series basics built in (null gaps,
 * two y axes, log x axis, cursor sync between charts, bands between series), and its draw hooks
 * give direct canvas access for the fault-window shading. Chart.js would need its annotation
 * plugin as a second file and is several times the size.
 *
 * Everything taken from a summary is HTML-escaped where it goes into markup, and the embedded
 * JSON has `<` written as \u003c so no string can close its <script> element.
 */
import { buildRunCharts, buildSweepCharts, faultColors, faultEnd, LOG_X_RATIO, MAX_PEER_LINES } from './report-data.js'
import { escapeHtml as h, fmtBytes, fmtInt, fmtMs, page, plottingLibrary } from './report-html.js'
import type { SimSummary, SweepPoint, SweepSummary } from '../core/summary.js'

export { escapeHtml, jsonForScript } from './report-html.js'
export { aggregateDivergence, buildRunCharts, buildSweepCharts, useLogX, MAX_PEER_LINES, LOG_X_RATIO } from './report-data.js'

function badge(ok: boolean, text?: string): string {
  return `<span class="badge ${ok ? 'ok' : 'failed'}">${h(text ?? (ok ? 'OK' : 'FAILED'))}</span>`
}

function modeName(mode: SimSummary['mode']): string {
  return mode === 'model' ? 'model' : 'real stack'
}

function facts(rows: Array<[string, string]>): string {
  return `<dl class="facts">\n${rows.map(([k, v]) => `<dt>${h(k)}</dt><dd>${v}</dd>`).join('\n')}\n</dl>`
}

function replayBlock(id: string, command: string): string {
  return (
    `<div class="replay"><pre><code id="${h(id)}">${h(command)}</code></pre>` +
    `<button type="button" data-copy="${h(id)}" title="Copy the command">Copy</button></div>`
  )
}

function violationList(violations: readonly string[]): string {
  return `<ol class="violations">\n${violations.map((v) => `<li>${h(v)}</li>`).join('\n')}\n</ol>`
}

function footer(): string {
  return `<footer>Shoal simulator report; charts drawn with uPlot ${h(plottingLibrary().version)} (inlined). Drag on a chart to zoom, double-click to reset; click a legend entry to hide its series.</footer>`
}

function byKind(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))
  if (entries.length === 0) return '—'
  return entries.map(([k, n]) => `${h(k)}&nbsp;${h(fmtInt(n))}`).join(' · ')
}

function convergeText(s: Pick<SimSummary, 'convergedAt' | 'timeToConvergeMs' | 'healedAt'>): string {
  if (s.timeToConvergeMs !== null) return h(fmtMs(s.timeToConvergeMs))
  if (s.convergedAt === null) return '<strong>did not converge</strong>'
  return '—'
}

/** The HTML report of one simulation run: header, divergence and traffic charts with the fault windows shaded. */
export function renderRunReport(summary: SimSummary): string {
  const s = summary
  const charts = buildRunCharts(s)
  const status = s.ok
    ? badge(true)
    : badge(false, s.violations.length > 0 ? `FAILED: ${s.violations.length} violation${s.violations.length === 1 ? '' : 's'}` : 'FAILED')
  const t = s.traffic

  const parts: string[] = []
  parts.push(`<header>
<h1>Simulation run: ${h(s.name)} ${status}</h1>
<p class="sub">${h(modeName(s.mode))} · seed ${h(s.seed)} · ${h(fmtInt(s.peers))} peers · ${h(fmtMs(s.durationMs))} simulated in ${h(fmtMs(s.wallMs))} wall-clock</p>
</header>`)

  if (!s.ok || s.violations.length > 0) {
    parts.push(`<section id="violations">
<h2>Violations (${h(s.violations.length)})</h2>
${s.violations.length > 0 ? violationList(s.violations) : '<p class="empty">The run failed without recording a violation.</p>'}
</section>`)
  }

  parts.push(`<section id="replay">
<h2>Replay</h2>
${replayBlock('replay-cmd', s.replay)}
</section>`)

  parts.push(`<section id="facts">
<h2>Run</h2>
${facts([
  ['Mode', h(modeName(s.mode))],
  ['Seed', h(s.seed)],
  ['Peers', h(fmtInt(s.peers))],
  ['Trace hash', s.traceHash !== null ? `<code>${h(s.traceHash)}</code>` : '— (real stack: not deterministic)'],
  ['Operations', `${h(fmtInt(s.ops.invoked))} invoked · ${h(fmtInt(s.ops.acknowledged))} acknowledged · ${h(fmtInt(s.ops.failed))} failed`],
  ['Operations by kind', byKind(s.ops.byKind)],
  ...(s.roles === undefined ? [] : [rolesFact(s.roles)]),
  ['Network healed at', s.healedAt !== null ? h(fmtMs(s.healedAt)) : '—'],
  ['Converged at', s.convergedAt !== null ? h(fmtMs(s.convergedAt)) : '<strong>never</strong>'],
  ['Time to converge after heal', convergeText(s)],
  ['Messages', `${h(fmtInt(t.messages))} (gossip ${h(fmtInt(t.gossipMessages))}, sync ${h(fmtInt(t.syncMessages))})`],
  ['Bytes', `${h(fmtBytes(t.bytes))} (gossip ${h(fmtBytes(t.gossipBytes))}, sync ${h(fmtBytes(t.syncBytes))}) · ${h(fmtInt(t.bytes))} B`],
  ['Simulated / wall-clock', `${h(fmtMs(s.durationMs))} / ${h(fmtMs(s.wallMs))}`],
])}
</section>`)

  if (charts.length === 0) {
    parts.push(`<section id="charts"><h2>Charts</h2><p class="empty">No samples were recorded.</p></section>`)
  } else {
    const peerCount = s.series.divergence.length
    const divergenceNote =
      peerCount > MAX_PEER_LINES
        ? `${h(fmtInt(peerCount))} peers (more than ${MAX_PEER_LINES}): the lines are the <strong>min, median and max across the peers that are up</strong> at each sample, the grey band spans min to max, and the dotted line counts peers down (right axis).`
        : 'One line per peer; a gap is a peer that is down.'
    parts.push(`<section id="divergence">
<h2>Divergence over time</h2>
<div id="chart-divergence" class="chart"></div>
<p class="note">${divergenceNote} Shaded bands are fault windows; dashed lines mark when the network healed and when all live peers converged.</p>
</section>
<section id="traffic">
<h2>Traffic over time</h2>
<div id="chart-traffic" class="chart"></div>
<p class="note">Messages/s (left axis, solid) and bytes/s (right axis, dashed), all peers together, sampled every ${h(fmtMs(s.series.intervalMs))}.</p>
</section>`)
  }

  const colors = faultColors(s.faults)
  parts.push(`<section id="faults">
<h2>Fault windows (${h(s.faults.length)})</h2>
${
  s.faults.length === 0
    ? '<p class="empty">No faults were injected.</p>'
    : `<table>
<thead><tr><th class="text">Kind</th><th class="text">Detail</th><th>From</th><th>To</th><th>Length</th></tr></thead>
<tbody>
${s.faults
  .map((f, i) => {
    const end = faultEnd(f, s)
    return `<tr><td class="text"><span class="swatch" style="background:${h(colors[i]?.swatch ?? 'transparent')}"></span>${h(f.kind)}</td><td class="text">${h(f.detail)}</td><td>${h(fmtMs(f.from))}</td><td>${f.to === null ? 'end of run' : h(fmtMs(f.to))}</td><td>${h(fmtMs(end - f.from))}</td></tr>`
  })
  .join('\n')}
</tbody>
</table>`
}
</section>`)
  parts.push(footer())

  return page({
    title: `${s.ok ? 'OK' : 'FAILED'} · ${s.name} · Shoal sim`,
    body: parts.join('\n\n'),
    data: { 'shoal-data': summary, 'shoal-charts': charts },
  })
}

function pointRow(p: SweepPoint): string {
  return `<tr${p.failed > 0 ? ' class="failed"' : ''}><td>${h(fmtInt(p.peers))}</td><td class="text">${h(modeName(p.mode))}</td><td>${h(fmtInt(p.runs))}</td><td>${h(fmtInt(p.failed))}</td><td>${h(fmtMs(p.convergeMs.p50))}</td><td>${h(fmtMs(p.convergeMs.p99))}</td><td>${h(fmtMs(p.convergeMs.max))}</td><td>${h(fmtInt(p.messages.p50))}</td><td>${h(fmtBytes(p.bytes.p50))}</td><td>${h(fmtMs(p.wallMs.p50))}</td></tr>`
}

/** The HTML report of a sweep: table of points, convergence time and traffic vs number of peers. */
export function renderSweepReport(sweep: SweepSummary): string {
  const charts = buildSweepCharts(sweep)
  const failedRuns = sweep.runs.filter((r) => !r.ok)
  const totalRuns = sweep.points.reduce((n, p) => n + p.runs, 0)
  const totalFailed = sweep.points.reduce((n, p) => n + p.failed, 0)
  const ok = failedRuns.length === 0 && totalFailed === 0
  const failedCount = Math.max(failedRuns.length, totalFailed)
  const points = [...sweep.points].sort((a, b) => (a.mode === b.mode ? a.peers - b.peers : a.mode === 'model' ? -1 : 1))
  const logX = charts[0]?.logX ?? false

  const parts: string[] = []
  parts.push(`<header>
<h1>Simulation sweep: ${h(sweep.name)} ${ok ? badge(true) : badge(false, `FAILED: ${failedCount} run${failedCount === 1 ? '' : 's'}`)}</h1>
<p class="sub">${h(sweep.points.length)} points · ${h(fmtInt(Math.max(totalRuns, sweep.runs.length)))} runs · modes: ${h([...new Set(sweep.points.map((p) => modeName(p.mode)))].join(', ') || '—')}</p>
</header>`)

  parts.push(`<section id="points">
<h2>Points</h2>
${
  points.length === 0
    ? '<p class="empty">The sweep has no points.</p>'
    : `<table>
<thead><tr><th>Peers</th><th class="text">Mode</th><th>Runs</th><th>Failed</th><th>Converge p50</th><th>Converge p99</th><th>Converge max</th><th>Messages p50</th><th>Bytes p50</th><th>Wall p50</th></tr></thead>
<tbody>
${points.map(pointRow).join('\n')}
</tbody>
</table>`
}
</section>`)

  if (charts.length > 0) {
    const axisNote = logX
      ? `The peers axis is logarithmic (the peer counts span more than a factor of ${LOG_X_RATIO}).`
      : 'The peers axis is linear.'
    parts.push(`<section id="converge">
<h2>Convergence time vs peers</h2>
<div id="chart-converge" class="chart"></div>
<p class="note">Time from the network healing to all live peers converging: p50 solid, p99 dashed; model (blue) and real stack (orange) are separate series. ${axisNote}</p>
</section>
<section id="sweep-traffic">
<h2>Traffic vs peers</h2>
<div id="chart-sweep-traffic" class="chart"></div>
<p class="note">Per run, p50: messages (left axis, solid) and bytes (right axis, dashed). ${axisNote}</p>
</section>`)
  }

  if (failedRuns.length > 0) {
    parts.push(`<section id="failed-runs">
<h2>Failed runs (${h(failedRuns.length)})</h2>
${failedRuns
  .map(
    (r, i) => `<article class="failed-run">
<h3>${h(r.name)} ${badge(false)}</h3>
<p class="sub">${h(modeName(r.mode))} · seed ${h(r.seed)} · ${h(fmtInt(r.peers))} peers</p>
${r.violations.length > 0 ? violationList(r.violations) : '<p class="empty">No violation recorded.</p>'}
${replayBlock(`replay-failed-${i}`, r.replay)}
</article>`,
  )
  .join('\n')}
</section>`)
  }

  if (sweep.runs.length > 0) {
    parts.push(`<section id="runs">
<h2>Runs</h2>
<details${sweep.runs.length <= 20 ? ' open' : ''}>
<summary>All ${h(fmtInt(sweep.runs.length))} runs</summary>
<table>
<thead><tr><th class="text">Run</th><th class="text">Mode</th><th>Peers</th><th>Seed</th><th class="text">Result</th><th>Converge</th><th>Messages</th><th>Bytes</th><th>Wall</th><th class="text">Replay</th></tr></thead>
<tbody>
${sweep.runs
  .map(
    (r) =>
      `<tr${r.ok ? '' : ' class="failed"'}><td class="text">${h(r.name)}</td><td class="text">${h(modeName(r.mode))}</td><td>${h(fmtInt(r.peers))}</td><td>${h(r.seed)}</td><td class="text">${r.ok ? 'OK' : `FAILED (${h(r.violations.length)})`}</td><td>${convergeText(r)}</td><td>${h(fmtInt(r.traffic.messages))}</td><td>${h(fmtBytes(r.traffic.bytes))}</td><td>${h(fmtMs(r.wallMs))}</td><td class="text"><code>${h(r.replay)}</code></td></tr>`,
  )
  .join('\n')}
</tbody>
</table>
</details>
</section>`)
  }
  parts.push(footer())

  return page({
    title: `${ok ? 'OK' : 'FAILED'} · ${sweep.name} · Shoal sweep`,
    body: parts.join('\n\n'),
    data: { 'shoal-data': sweep, 'shoal-charts': charts },
  })
}

/** The roles line: writes made outside their author's rights, and what the other peers refused of them. */
function rolesFact(r: NonNullable<SimSummary['roles']>): [string, string] {
  const enforced = r.enforced ? '' : ' · <strong>enforcement off (test)</strong>'
  return ['Roles', `${h(fmtInt(r.forbiddenWrites))} writes outside their author's rights (${h(fmtInt(r.acknowledgedForbidden))} acknowledged locally) · ${h(fmtInt(r.refusals))} deliveries refused${enforced}`]
}
