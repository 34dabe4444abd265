import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import vm from 'node:vm'
import { describe, expect, it } from 'vitest'
import {
  aggregateDivergence,
  buildRunCharts,
  jsonForScript,
  renderRunReport,
  renderSweepReport,
  useLogX,
} from '../../../src/sim/report/report.js'
import { browserAvailable, CHROMIUM } from '../../helpers/browser.js'
import type { ChartSpec } from '../../../src/sim/report/report-data.js'
import type { SimSummary, SweepSummary } from '../../../src/sim/core/summary.js'

const HOSTILE = '<script>alert(1)</script>'

function runFixture(over: Partial<SimSummary> = {}): SimSummary {
  const samples = 20
  const t = Array.from({ length: samples }, (_, i) => i * 500)
  // p0 steady, p1 diverges during the partition, p2 down (null) during the crash window.
  const divergence: Array<Array<number | null>> = [
    t.map((ms) => (ms < 3000 ? 5 : ms < 6000 ? 2 : 0)),
    t.map((ms) => (ms >= 2000 && ms < 6500 ? 12 : ms < 2000 ? 4 : 0)),
    t.map((ms) => (ms >= 4000 && ms < 5500 ? null : ms < 7000 ? 7 : 0)),
  ]
  return {
    name: 'partition-heal <b>"bold"</b> & co',
    mode: 'model',
    seed: 42,
    peers: 3,
    ok: false,
    violations: [`peer p2 table orders partition 0 row ${HOSTILE}: value differs after convergence`, 'peer p1 table stock partition 3 row sku-7: lost acknowledged write'],
    replay: `npx tsx src/sim/cli.ts --seed 42 --peers 3 --name 'partition <x> & "y"'`,
    traceHash: 'sha256:0f1e2d3c4b5a',
    ops: { invoked: 120, acknowledged: 115, failed: 5, byKind: { put: 90, delete: 30 } },
    healedAt: 6000,
    convergedAt: 7000,
    timeToConvergeMs: 1000,
    traffic: { messages: 4321, bytes: 1_234_567, gossipMessages: 4000, gossipBytes: 1_000_000, syncMessages: 321, syncBytes: 234_567 },
    faults: [
      { kind: 'partition', from: 2000, to: 6000, detail: 'peers 0 | 1-2' },
      { kind: 'crash', from: 4000, to: null, detail: `peer 2 ${HOSTILE}` },
    ],
    series: {
      intervalMs: 500,
      t,
      peers: ['p0', 'p1', 'p2'],
      divergence,
      messagesPerSec: t.map((ms) => 100 + (ms % 1500) / 10),
      bytesPerSec: t.map((ms) => 40_000 + ms * 3),
    },
    durationMs: 10_000,
    wallMs: 850,
    ...over,
  }
}

function sweepFixture(): SweepSummary {
  const run = runFixture()
  const { series: _series, ...failed } = run
  const okRun = { ...failed, name: 'sweep-3-model-seed-1', ok: true, violations: [], seed: 1, replay: 'npx tsx src/sim/cli.ts --seed 1 --peers 3' }
  return {
    name: `peers sweep ${HOSTILE}`,
    points: [
      { peers: 3, mode: 'model', runs: 5, failed: 1, convergeMs: { p50: 800, p99: 1500, max: 1600 }, messages: { p50: 4000 }, bytes: { p50: 1_200_000 }, wallMs: { p50: 700 } },
      { peers: 10, mode: 'model', runs: 5, failed: 0, convergeMs: { p50: 1100, p99: 2100, max: 2300 }, messages: { p50: 15000 }, bytes: { p50: 4_500_000 }, wallMs: { p50: 1900 } },
      { peers: 100, mode: 'model', runs: 5, failed: 0, convergeMs: { p50: 2600, p99: 4800, max: 5100 }, messages: { p50: 180000 }, bytes: { p50: 61_000_000 }, wallMs: { p50: 21000 } },
      { peers: 3, mode: 'real', runs: 3, failed: 0, convergeMs: { p50: 1300, p99: 2900, max: 3000 }, messages: { p50: 5200 }, bytes: { p50: 1_900_000 }, wallMs: { p50: 9000 } },
      { peers: 10, mode: 'real', runs: 3, failed: 0, convergeMs: { p50: 2100, p99: 3900, max: 4100 }, messages: { p50: 19000 }, bytes: { p50: 7_100_000 }, wallMs: { p50: 24000 } },
    ],
    runs: [failed, okRun],
  }
}

/** Text of <script type="application/json" id="ID">. */
function jsonBlock(html: string, id: string): string {
  const m = new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`).exec(html)
  if (!m || m[1] === undefined) throw new Error(`no JSON block ${id}`)
  return m[1]
}

/** Bodies of the executable inline <script> elements, in order. */
function inlineScripts(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] ?? '')
}

function expectFullDocument(html: string): void {
  expect(html.startsWith('<!DOCTYPE html>')).toBe(true)
  expect(html).toMatch(/<html lang="en">/)
  expect(html).toMatch(/<head>[\s\S]*<meta charset="utf-8">[\s\S]*<title>[^<]*<\/title>[\s\S]*<\/head>/)
  expect(html).toMatch(/<body>[\s\S]*<\/body>\s*<\/html>\s*$/)
}

function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/<script[^>]*\ssrc\s*=/i)
  expect(html).not.toMatch(/<link[^>]*\shref\s*=\s*["']?(https?:)?\/\//i)
  expect(html).not.toMatch(/<(img|iframe|link|script)[^>]*\s(src|href)\s*=\s*["']?https?:/i)
  expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i)
  // uPlot's IIFE build is inlined (it defines the global the client uses) with its stylesheet.
  const scripts = inlineScripts(html)
  expect(scripts).toHaveLength(2)
  expect(scripts[0]).toMatch(/var uPlot=/)
  expect(scripts[0]!.length).toBeGreaterThan(30_000)
  expect(html).toMatch(/\.uplot\s*\{/)
  // Every <script> that opens closes where it should: 2 JSON blocks + library + client.
  expect(html.match(/<script\b/gi)).toHaveLength(4)
  expect(html.match(/<\/script/gi)).toHaveLength(4)
}

function expectHostileEscaped(html: string): void {
  expect(html).not.toContain(HOSTILE)
  expect(html).not.toMatch(/<script>alert/i)
  expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
  // Every alert(1) in the page is inside an escaped form (HTML entities or JSON \u003c).
  for (const m of html.matchAll(/alert\(1\)/g)) {
    const before = html.slice(Math.max(0, m.index - 20), m.index)
    expect(before.endsWith('&lt;script&gt;') || before.endsWith('\\u003cscript\\u003e')).toBe(true)
  }
  for (const id of ['shoal-data', 'shoal-charts']) expect(jsonBlock(html, id)).not.toMatch(/[<>]/)
}

interface FakePlot {
  opts: {
    series: Array<{ label: string; value?: (u: unknown, v: number | null) => string }>
    axes: Array<{ label: string; side?: number; values: (u: unknown, splits: number[]) => string[] }>
    scales: Record<string, { distr?: number; range?: unknown }>
    bands: Array<{ series: [number, number] }>
    plugins: Array<{ hooks: { drawClear: Array<(u: unknown) => void>; draw: Array<(u: unknown) => void> } }>
  }
  data: Array<Array<number | null>>
  el: { id: string }
  /** The stub instance, passed to the hooks as uPlot passes itself. */
  plot: unknown
}

/**
 * Runs the page's client script in a VM against a stub DOM and a stub uPlot that records what it
 * is given, then calls the drawing hooks on a recording canvas context.
 */
function runClient(html: string): { plots: FakePlot[]; texts: string[]; fills: number; errors: unknown[]; window: Record<string, unknown> } {
  const client = inlineScripts(html)[1]!
  const plots: FakePlot[] = []
  const texts: string[] = []
  const errors: unknown[] = []
  let fills = 0
  const ctx = {
    save() {},
    restore() {},
    beginPath() {},
    rect() {},
    clip() {},
    moveTo() {},
    lineTo() {},
    stroke() {},
    setLineDash() {},
    fillRect() {
      fills++
    },
    fillText(text: string) {
      texts.push(text)
    },
    measureText(text: string) {
      return { width: text.length * 6 }
    },
    set fillStyle(_v: string) {},
    set strokeStyle(_v: string) {},
    set lineWidth(_v: number) {},
    set font(_v: string) {},
    set textBaseline(_v: string) {},
  }
  class StubPlot {
    static pxRatio = 1
    static rangeNum(min: number, max: number): [number, number] {
      return [min, max]
    }
    ctx = ctx
    bbox = { left: 60, top: 10, width: 800, height: 300 }
    constructor(opts: FakePlot['opts'], data: FakePlot['data'], el: { id: string }) {
      plots.push({ opts, data, el, plot: this })
    }
    valToPos(v: number): number {
      return 60 + v * 70
    }
    setSize(): void {}
  }
  const elements = new Map<string, { id: string; clientWidth: number; className: string; textContent: string }>()
  const document = {
    getElementById(id: string) {
      if (id === 'shoal-data' || id === 'shoal-charts') return { textContent: jsonBlock(html, id) }
      if (!html.includes(`id="${id}"`)) return null
      let el = elements.get(id)
      if (!el) elements.set(id, (el = { id, clientWidth: 900, className: 'chart', textContent: '' }))
      return el
    },
    querySelectorAll() {
      return []
    },
  }
  const window: Record<string, unknown> = { addEventListener() {}, devicePixelRatio: 1 }
  vm.runInNewContext(client, {
    document,
    window,
    navigator: {},
    uPlot: StubPlot,
    console: { error: (e: unknown) => errors.push(e) },
    setTimeout,
    clearTimeout,
  })
  for (const p of plots) {
    for (const hook of p.opts.plugins[0]!.hooks.drawClear) hook(p.plot)
    for (const hook of p.opts.plugins[0]!.hooks.draw) hook(p.plot)
  }
  for (const el of elements.values()) if (el.className.includes('chart-error')) errors.push(el.textContent)
  return { plots, texts, fills, errors, window }
}

describe('renderRunReport', () => {
  const summary = runFixture()
  const html = renderRunReport(summary)

  it('is a complete, self-contained HTML document', () => {
    expectFullDocument(html)
    expectSelfContained(html)
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none';/)
  })

  it('embeds the summary as JSON that parses back to it', () => {
    expect(JSON.parse(jsonBlock(html, 'shoal-data'))).toEqual(summary)
    const charts = JSON.parse(jsonBlock(html, 'shoal-charts')) as ChartSpec[]
    expect(charts).toEqual(JSON.parse(JSON.stringify(buildRunCharts(summary))))
  })

  it('escapes every string from the summary', () => {
    expectHostileEscaped(html)
    expect(html).toContain('partition-heal &lt;b&gt;&quot;bold&quot;&lt;/b&gt; &amp; co')
    expect(html).not.toContain('<b>"bold"</b>')
    expect(html).toContain(
      '<code id="replay-cmd">npx tsx src/sim/cli.ts --seed 42 --peers 3 --name &#39;partition &lt;x&gt; &amp; &quot;y&quot;&#39;</code>',
    )
    expect(html).toContain('<button type="button" data-copy="replay-cmd"')
  })

  it('shows the header: status, violations, seed, hash, ops, convergence, traffic', () => {
    expect(html).toContain('FAILED: 2 violations')
    expect(html).toMatch(/<ol class="violations">\s*<li>peer p2 table orders partition 0 row &lt;script&gt;alert\(1\)&lt;\/script&gt;: value differs after convergence<\/li>\s*<li>peer p1 table stock partition 3 row sku-7: lost acknowledged write<\/li>/)
    expect(html).toContain('seed 42')
    expect(html).toContain('<code>sha256:0f1e2d3c4b5a</code>')
    expect(html).toContain('120 invoked · 115 acknowledged · 5 failed')
    expect(html).toContain('delete&nbsp;30 · put&nbsp;90')
    expect(html).toMatch(/Time to converge after heal<\/dt><dd>1 s<\/dd>/)
    expect(html).toContain('4,321 (gossip 4,000, sync 321)')
    expect(html).toContain('1.23 MB (gossip 1 MB, sync 235 kB) · 1,234,567 B')
  })

  it('lists the fault windows and shades them on both charts', () => {
    expect(html).toMatch(/<td class="text"><span class="swatch"[^>]*><\/span>partition<\/td><td class="text">peers 0 \| 1-2<\/td><td>2 s<\/td><td>6 s<\/td><td>4 s<\/td>/)
    expect(html).toMatch(/crash<\/td><td class="text">peer 2 &lt;script&gt;alert\(1\)&lt;\/script&gt;<\/td><td>4 s<\/td><td>end of run<\/td><td>6 s<\/td>/)
    const charts = buildRunCharts(summary)
    expect(charts.map((c) => c.id)).toEqual(['chart-divergence', 'chart-traffic'])
    for (const c of charts) {
      expect(html).toContain(`<div id="${c.id}" class="chart">`)
      expect(c.shades.map((s) => [s.from, s.to, s.label])).toEqual([
        [2, 6, 'partition: peers 0 | 1-2'],
        [4, 10, `crash: peer 2 ${HOSTILE}`],
      ])
      expect(c.markers.map((m) => [m.label, m.x])).toEqual([
        ['healed', 6],
        ['converged', 7],
      ])
    }
  })

  it('draws one line per peer with gaps for a down peer, and messages/bytes on two axes', () => {
    const [div, traffic] = buildRunCharts(summary)
    expect(div!.series.map((s) => s.label)).toEqual(['p0', 'p1', 'p2'])
    expect(div!.x).toHaveLength(20)
    expect(div!.series[2]!.data.filter((v) => v === null)).toHaveLength(3)
    expect(traffic!.series.map((s) => [s.label, s.scale])).toEqual([
      ['messages/s', 'msgs'],
      ['bytes/s', 'bytes'],
    ])
    expect(traffic!.axes.map((a) => a.side)).toEqual(['left', 'right'])
  })

  it('draws min / median / max instead of one line each for many peers', () => {
    const base = runFixture()
    const peers = 40
    const divergence = Array.from({ length: peers }, (_, p) => base.series.t.map((_t, i) => (p === 0 && i < 5 ? null : (p * 7 + i) % 11)))
    const many = runFixture({ peers, series: { ...base.series, peers: divergence.map((_, p) => `p${p}`), divergence } })
    const [div] = buildRunCharts(many)
    expect(div!.series.map((s) => s.label)).toEqual(['max across 40 peers', 'median across 40 peers', 'min across 40 peers', 'peers down'])
    expect(div!.bands).toHaveLength(1)
    expect(div!.series[3]!.data.slice(0, 6)).toEqual([1, 1, 1, 1, 1, 0])
    expect(renderRunReport(many)).toContain('min, median and max across the peers that are up')
  })

  it('runs its client script: two uPlot charts with fault bands and labels, no errors', () => {
    const { plots, texts, fills, errors, window } = runClient(html)
    expect(errors).toEqual([])
    expect(plots.map((p) => p.el.id)).toEqual(['chart-divergence', 'chart-traffic'])
    const [div, traffic] = plots
    expect(div!.opts.series.map((s) => s.label)).toEqual(['simulation time', 'p0', 'p1', 'p2'])
    expect(div!.data).toHaveLength(4)
    expect(div!.data.every((d) => d.length === 20)).toBe(true)
    expect(traffic!.opts.axes.map((a) => a.side)).toEqual([undefined, 3, 1])
    expect(traffic!.opts.axes[2]!.values(null, [0, 1_500_000])).toEqual(['0 B', '1.5 MB'])
    expect(div!.opts.series[3]!.value!(null, null)).toBe('\u2014')
    // Fault labels (as canvas text, never HTML) and the healed / converged markers, on both charts.
    for (const label of ['partition: peers 0 | 1-2', `crash: peer 2 ${HOSTILE}`, 'healed', 'converged']) {
      expect(texts.filter((t) => t === label)).toHaveLength(2)
    }
    expect(fills).toBeGreaterThan(4)
    expect(window.shoalData).toEqual(summary)
  })

  it('renders a run without samples or faults', () => {
    const empty = runFixture({
      ok: true,
      violations: [],
      faults: [],
      healedAt: null,
      convergedAt: null,
      timeToConvergeMs: null,
      traceHash: null,
      mode: 'real',
      series: { intervalMs: 500, t: [], peers: [], divergence: [], messagesPerSec: [], bytesPerSec: [] },
    })
    const out = renderRunReport(empty)
    expectFullDocument(out)
    expect(out).toContain('<span class="badge ok">OK</span>')
    expect(out).toContain('No samples were recorded.')
    expect(out).toContain('No faults were injected.')
    expect(out).toContain('did not converge')
    expect(out).not.toContain('id="violations"')
    expect(runClient(out).plots).toEqual([])
  })
})

describe('renderSweepReport', () => {
  const sweep = sweepFixture()
  const html = renderSweepReport(sweep)

  it('is a complete, self-contained HTML document with the sweep embedded', () => {
    expectFullDocument(html)
    expectSelfContained(html)
    expect(JSON.parse(jsonBlock(html, 'shoal-data'))).toEqual(sweep)
    expectHostileEscaped(html)
  })

  it('tables every point', () => {
    const rows = [...html.matchAll(/<tr(?: class="failed")?><td>([\d,]+)<\/td><td class="text">(model|real stack)<\/td>/g)].map((m) => `${m[2]}:${m[1]}`)
    expect(rows).toEqual(['model:3', 'model:10', 'model:100', 'real stack:3', 'real stack:10'])
    expect(html).toContain('<tr class="failed"><td>3</td><td class="text">model</td><td>5</td><td>1</td><td>800 ms</td><td>1.5 s</td><td>1.6 s</td><td>4,000</td><td>1.2 MB</td><td>700 ms</td></tr>')
    expect(html).toContain('FAILED: 1 run')
  })

  it('lists failed runs with their violations and replay commands, escaped', () => {
    expect(html).toContain('<section id="failed-runs">')
    expect(html).toContain('<code id="replay-failed-0">npx tsx src/sim/cli.ts --seed 42')
    expect(html).toContain('row &lt;script&gt;alert(1)&lt;/script&gt;: value differs')
  })

  it('charts convergence p50/p99 and traffic vs peers, model and real separately, log x past a factor of 20', () => {
    const { plots, errors } = runClient(html)
    expect(errors).toEqual([])
    expect(plots.map((p) => p.el.id)).toEqual(['chart-converge', 'chart-sweep-traffic'])
    const [conv, traffic] = plots
    expect(conv!.data[0]).toEqual([3, 10, 100])
    expect(conv!.opts.series.map((s) => s.label)).toEqual(['peers', 'model p50', 'model p99', 'real p50', 'real p99'])
    expect(conv!.data.slice(1)).toEqual([
      [800, 1100, 2600],
      [1500, 2100, 4800],
      [1300, 2100, null],
      [2900, 3900, null],
    ])
    expect(conv!.opts.scales.x!.distr).toBe(3)
    expect(traffic!.opts.series.map((s) => s.label)).toEqual(['peers', 'model messages p50', 'model bytes p50', 'real messages p50', 'real bytes p50'])
    expect(traffic!.data[2]).toEqual([1_200_000, 4_500_000, 61_000_000])
    expect(html).toContain('The peers axis is logarithmic')

    const narrow = renderSweepReport({ ...sweep, points: sweep.points.filter((p) => p.peers <= 10) })
    expect(runClient(narrow).plots[0]!.opts.scales.x!.distr).toBeUndefined()
    expect(narrow).toContain('The peers axis is linear.')
  })
})

describe('report helpers', () => {
  it('aggregates divergence over the peers that are up', () => {
    const agg = aggregateDivergence(
      [
        [1, null, 5],
        [3, null, 1],
        [2, null, null],
        [10, null, 3],
      ],
      3,
    )
    expect(agg).toEqual({ min: [1, null, 1], median: [2.5, null, 3], max: [10, null, 5], down: [0, 4, 1] })
  })

  it('chooses a log x axis only past a factor of 20', () => {
    expect(useLogX([3, 10, 60])).toBe(false)
    expect(useLogX([3, 10, 61])).toBe(true)
    expect(useLogX([0, 100])).toBe(false)
    expect(useLogX([5])).toBe(false)
  })

  it('writes JSON that cannot close its script element', () => {
    const value = { s: '</script><!-- & \u2028', n: [1, null] }
    const text = jsonForScript(value)
    expect(text).not.toMatch(/[<>&\u2028]/)
    expect(JSON.parse(text)).toEqual(value)
  })
})

describe.skipIf(!browserAvailable())('in headless Chromium', () => {
  it('loads both reports with no console errors and draws the charts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-report-'))
    try {
      for (const [file, html, charts] of [
        ['run.html', renderRunReport(runFixture()), 2],
        ['sweep.html', renderSweepReport(sweepFixture()), 2],
      ] as const) {
        const path = join(dir, file)
        writeFileSync(path, html)
        const out = spawnSync(
          CHROMIUM,
          ['--headless', '--no-sandbox', '--disable-gpu', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=5000', '--dump-dom', `file://${path}`],
          { encoding: 'utf8', timeout: 60_000 },
        )
        expect(out.status).toBe(0)
        const consoleErrors = out.stderr.split('\n').filter((l) => /CONSOLE|Uncaught|Refused to/i.test(l))
        expect(consoleErrors).toEqual([])
        // (the stylesheet and the inlined script always name it; a chart that failed carries the class)
        expect(out.stdout).not.toMatch(/class="[^"]*chart-error/)
        expect(out.stdout.match(/class="uplot/g) ?? []).toHaveLength(charts)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
