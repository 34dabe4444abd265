/* The results table every benchmark prints: Markdown, so it can be pasted into bench/README.md as it is. */

/**
 * Renders `rows` (the first is the header) as a Markdown table with padded columns. Columns for
 * which `left(c)` holds are left-aligned (labels, verdicts), the others right-aligned (numbers).
 */
export function markdownTable(rows: readonly (readonly string[])[], left: (column: number) => boolean = (c) => c === 0): string {
  const header = rows[0]
  if (header === undefined) return ''
  const widths = header.map((_, c) => Math.max(3, ...rows.map((r) => (r[c] ?? '').length)))
  const render = (r: readonly string[]): string => '| ' + widths.map((w, c) => (left(c) ? (r[c] ?? '').padEnd(w) : (r[c] ?? '').padStart(w))).join(' | ') + ' |'
  const sep = '|' + widths.map((w, c) => (left(c) ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|'
  return [render(header), sep, ...rows.slice(1).map(render)].join('\n')
}

/** A number for a table cell: thousands separators, `digits` decimals; yes / NO for booleans; — for anything else. */
export function fmt(value: unknown, digits = 0): string {
  if (typeof value === 'number') return Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—'
  if (typeof value === 'boolean') return value ? 'yes' : 'NO'
  return '—'
}
