import { describe, expect, it } from 'vitest'
import { renderChart, type ChartInput } from '../../bench/peers/chart.js'

const input: ChartInput = {
  title: 'Convergence time per workload (Shoal & friends, lower is better)',
  workloads: ['w1 10k inserts A→B', 'w2 10k updates', 'w3 <restart>'],
  series: [
    { system: 'shoal', values: [0.5, 5, 50] },
    { system: 'yjs', values: [0.77, 4.52, null] },
    { system: 'automerge-repo', values: [12.3, 90.1, 1.5] },
  ],
  note: 'median of 3 runs; test machine',
  dnfLabels: [[null, null, null], [null, null, 'DNF 90 s'], [null, null, null]],
}

const bars = (svg: string): Array<{ system: string; workload: number; width: number }> =>
  [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"[^>]*data-system="([^"]+)" data-workload="(\d+)"/g)].map((m) => ({
    system: m[2]!,
    workload: Number(m[3]),
    width: Number(m[1]),
  }))

describe('renderChart', () => {
  const svg = renderChart(input)

  it('emits a standalone SVG document with legend, labels and escaped text', () => {
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.endsWith('</svg>')).toBe(true)
    expect(svg).not.toMatch(/<script|@import|href=/)
    for (const s of input.series) expect(svg).toContain(`>${s.system}</text>`)
    expect(svg).toContain('>DNF 90 s</text>')
    expect(svg).toContain('Shoal &amp; friends')
    expect(svg).toContain('w3 &lt;restart&gt;')
    expect(svg).not.toMatch(/&(?!amp;|lt;|gt;|quot;|apos;)/)
    expect(svg).toContain('>4.52 s</text>')
    expect(svg).toContain('>0.77 s</text>')
    for (const tick of ['0.1 s', '1 s', '10 s', '100 s']) expect(svg).toContain(`>${tick}</text>`)
    expect(svg).toContain('median of 3 runs; test machine')
  })

  it('draws one bar per non-null value', () => {
    const all = bars(svg)
    expect(all).toHaveLength(8)
    expect(all.some((b) => b.system === 'yjs' && b.workload === 2)).toBe(false)
  })

  it('uses a log scale: bar length is monotone in value, each 10x adds the same length', () => {
    const all = bars(svg)
    const width = (system: string, workload: number): number => all.find((b) => b.system === system && b.workload === workload)!.width
    const [w05, w5, w50] = [width('shoal', 0), width('shoal', 1), width('shoal', 2)]
    expect(w05).toBeLessThan(w5)
    expect(w5).toBeLessThan(w50)
    expect(w50 - w5).toBeCloseTo(w5 - w05, 1)
    const sorted = [...all].sort((a, b) => a.width - b.width).map((b) => input.series.find((s) => s.system === b.system)!.values[b.workload]!)
    expect(sorted).toEqual([...sorted].sort((a, b) => a - b))
  })

  it('is deterministic and defaults the null label to DNF', () => {
    expect(renderChart(input)).toBe(svg)
    const plain = renderChart({ ...input, dnfLabels: undefined })
    expect(plain).toContain('>DNF</text>')
  })
})
