/*
 * HTML building blocks for the reports: escaping, number formatting, the inlined plotting library
 * and the page shell.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { CLIENT_JS, PAGE_CSS } from './report-client.js'

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

/**
 * JSON for a <script type="application/json"> element: `<`, `>` and `&` become \u003c, \u003e and
 * \u0026, so no string in the data can close the element (`</script>`) or open a comment (`<!--`);
 * U+2028/U+2029 are escaped too. JSON.parse of the element's text gives back the same value.
 */
export function jsonForScript(value: unknown): string {
  return (JSON.stringify(value) ?? 'null')
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

const INT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? INT.format(n) : '—'
}

function trimFixed(v: number, digits: number): string {
  return String(Number(v.toFixed(digits)))
}

/** Decimal units: "850 B", "12.3 kB", "4.56 MB". */
export function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return '—'
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let v = n
  let u = 0
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${u === 0 ? fmtInt(v) : trimFixed(v, Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2)} ${units[u]}`
}

/** "850 ms", "12.35 s", "3 min 4.5 s". */
export function fmtMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '—'
  const a = Math.abs(ms)
  if (a < 1000) return `${trimFixed(ms, a < 10 ? 2 : 0)} ms`
  if (a < 60_000) return `${trimFixed(ms / 1000, 2)} s`
  const min = Math.trunc(ms / 60_000)
  return `${min} min ${trimFixed((ms - min * 60_000) / 1000, 1)} s`
}

interface Library {
  version: string
  js: string
  css: string
}

let library: Library | undefined

/**
 * uPlot's IIFE build and stylesheet, read from node_modules once. Any `</script`, `</style` or
 * `<!--` in them (none today) is defused so the inlined text cannot end its element early.
 */
export function plottingLibrary(): Library {
  if (library !== undefined) return library
  const require = createRequire(import.meta.url)
  const read = (spec: string): string => readFileSync(require.resolve(spec), 'utf8')
  const pkg = JSON.parse(read('uplot/package.json')) as { version: string }
  library = {
    version: pkg.version,
    js: read('uplot/dist/uPlot.iife.min.js').replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--'),
    css: read('uplot/dist/uPlot.min.css').replace(/<\/(style)/gi, '<\\/$1'),
  }
  return library
}

/** The complete document: inlined library, page style, JSON data blocks, then the client script. */
export function page(opts: { title: string; body: string; data: Record<string, unknown> }): string {
  const lib = plottingLibrary()
  const data = Object.entries(opts.data)
    .map(([id, value]) => `<script type="application/json" id="${escapeHtml(id)}">${jsonForScript(value)}</script>`)
    .join('\n')
  // No network at all: everything the page needs is in it.
  const csp =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="generator" content="shoal sim report (uPlot ${escapeHtml(lib.version)}, inlined)">
<title>${escapeHtml(opts.title)}</title>
<style>
/* uPlot ${escapeHtml(lib.version)} (MIT) */
${lib.css}
</style>
<style>
${PAGE_CSS}
</style>
</head>
<body>
<main>
${opts.body}
</main>
${data}
<script>
${lib.js}
</script>
<script>
${CLIENT_JS}
</script>
</body>
</html>
`
}
