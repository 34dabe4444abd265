/*
 * Grouped horizontal bar chart of per-workload times, as a standalone SVG for the README.
 * Hand-written rather than a charting library so the output is dependency-free, deterministic
 * (diffable in git) and renders on GitHub, which strips scripts and external resources from SVGs.
 */

export interface ChartSeries { system: string; values: Array<number | null> } // seconds per workload; null = did not finish / not run
export interface ChartInput {
  title: string
  workloads: string[]
  series: ChartSeries[]
  note?: string
  dnfLabels?: Array<Array<string | null>>
}

// Okabe–Ito, reordered so the first few series get the most distinct hues; yellow goes late
// because it is barely visible on white.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000']
const WIDTH = 900
const FONT = 'font-family="sans-serif"'
const BAR_H = 16
const BAR_GAP = 4
const GROUP_PAD = 12
const RIGHT = 80 // room for the value label of the longest bar

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')

// Rounded coordinates keep the file small and stable across platforms' float printing.
const r = (n: number): string => String(Math.round(n * 100) / 100)

// Rough text width: SVG cannot measure text, so layout uses an average glyph width.
const textW = (s: string, size: number): number => s.length * size * 0.58

export function formatSeconds(v: number): string {
  return `${Number(v.toPrecision(3))} s`
}

function decadeLabel(k: number): string {
  return `${Number((10 ** k).toPrecision(1))} s`
}

export function renderChart(input: ChartInput): string {
  const { workloads, series } = input
  const positive = series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v) && v > 0)
  // Whole decades keep gridlines on round numbers; at least one decade so the scale is never empty.
  let lo = positive.length ? Math.floor(Math.log10(Math.min(...positive))) : -1
  let hi = positive.length ? Math.ceil(Math.log10(Math.max(...positive))) : 0
  if (hi <= lo) hi = lo + 1
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = -1; hi = 0 }

  const left = Math.min(320, Math.max(120, Math.max(0, ...workloads.map((w) => textW(w, 12))) + 24))
  const plotW = WIDTH - left - RIGHT
  // Bars start at the axis minimum, so a value of exactly 10^lo would vanish; keep a 1 px sliver.
  const barLen = (v: number): number =>
    v > 0 ? Math.max(1, ((Math.log10(v) - lo) / (hi - lo)) * plotW) : 1
  const xOf = (k: number): number => left + ((k - lo) / (hi - lo)) * plotW

  const out: string[] = []
  let y = 30
  out.push(`<text x="${WIDTH / 2}" y="${y}" text-anchor="middle" font-size="16" font-weight="bold">${esc(input.title)}</text>`)

  // Legend wraps onto extra rows when many or long system names would overflow the width.
  y += 24
  let lx = left
  series.forEach((s, i) => {
    const w = 18 + textW(s.system, 12) + 18
    if (lx + w > WIDTH - 10 && lx > left) { lx = left; y += 20 }
    out.push(`<rect x="${r(lx)}" y="${y - 10}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`)
    out.push(`<text x="${r(lx + 18)}" y="${y}" font-size="12">${esc(s.system)}</text>`)
    lx += w
  })

  const top = y + 18
  const groupH = series.length * BAR_H + Math.max(0, series.length - 1) * BAR_GAP + 2 * GROUP_PAD
  const bottom = top + workloads.length * groupH

  // Gridlines first so bars paint over them; minor lines at 2..9 make log distances readable.
  for (let k = lo; k <= hi; k++) {
    const x = xOf(k)
    out.push(`<line x1="${r(x)}" y1="${top}" x2="${r(x)}" y2="${bottom}" stroke="#bbb" stroke-width="1"/>`)
    out.push(`<text x="${r(x)}" y="${bottom + 16}" text-anchor="middle" font-size="11" fill="#444">${esc(decadeLabel(k))}</text>`)
    if (k < hi) {
      for (let m = 2; m <= 9; m++) {
        const mx = xOf(k + Math.log10(m))
        out.push(`<line x1="${r(mx)}" y1="${top}" x2="${r(mx)}" y2="${bottom}" stroke="#eee" stroke-width="1"/>`)
      }
    }
  }
  out.push(`<text x="${r(left + plotW / 2)}" y="${bottom + 34}" text-anchor="middle" font-size="11" fill="#444">seconds (log scale)</text>`)

  workloads.forEach((wl, wi) => {
    const gy = top + wi * groupH
    // Alternate bands tell groups apart without extra lines crossing the gridlines.
    if (wi % 2 === 1) out.splice(0, 0, `<rect x="0" y="${gy}" width="${WIDTH}" height="${groupH}" fill="#f5f5f5"/>`)
    out.push(`<text x="${left - 10}" y="${r(gy + groupH / 2 + 4)}" text-anchor="end" font-size="12">${esc(wl)}</text>`)
    series.forEach((s, si) => {
      const by = gy + GROUP_PAD + si * (BAR_H + BAR_GAP)
      const ty = r(by + BAR_H / 2 + 4)
      const v = s.values[wi] ?? null
      if (v === null || !Number.isFinite(v)) {
        const label = input.dnfLabels?.[si]?.[wi] ?? 'DNF'
        out.push(`<text x="${left + 6}" y="${ty}" font-size="11" font-style="italic" fill="#888" data-dnf="${esc(s.system)}">${esc(label)}</text>`)
        return
      }
      const len = barLen(v)
      out.push(`<rect x="${left}" y="${by}" width="${r(len)}" height="${BAR_H}" fill="${PALETTE[si % PALETTE.length]}" data-system="${esc(s.system)}" data-workload="${wi}"><title>${esc(`${s.system} · ${wl}: ${formatSeconds(v)}`)}</title></rect>`)
      out.push(`<text x="${r(left + len + 5)}" y="${ty}" font-size="11" fill="#222">${esc(formatSeconds(v))}</text>`)
    })
  })
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#444" stroke-width="1"/>`)

  let height = bottom + 48
  if (input.note) {
    out.push(`<text x="10" y="${height}" font-size="10" fill="#666">${esc(input.note)}</text>`)
    height += 12
  }
  // The white backdrop keeps the chart legible in GitHub's dark theme.
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...out,
    '</svg>',
  ].join('\n')
}
