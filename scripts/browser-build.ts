import { existsSync } from 'node:fs'
import { copyFile, readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build, type Plugin } from 'esbuild'

/*
 * The browser build: src/browser.ts (the library and BrowserPeer) and the demo app (src/ui/, the
 * stock board a peer serves with `shoal start --ui`) bundled with esbuild, each port swapped for
 * its `.browser.ts` sibling, Automerge in a chunk of its own that a page fetches only when a
 * table uses it. The same swaps are listed in package.json "browser" for bundlers
 * that build an app from the published dist/ (test/browser/package.test.ts keeps them equal).
 *
 *   npx tsx scripts/browser-build.ts [outdir]     (default dist/browser; part of npm run build)
 */

/** The package's root: the nearest folder above this module with a package.json (from scripts/ or dist/scripts/ alike). */
export const ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
})()

/** Resolves `./x.js` imports inside src/ to `./x.browser.ts` where such a file exists. */
export const browserPorts: Plugin = {
  name: 'shoal-browser-ports',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      if (!args.importer.startsWith(join(ROOT, 'src'))) return undefined
      const port = resolve(args.resolveDir, args.path.replace(/\.js$/, '.browser.ts'))
      return existsSync(port) ? { path: port } : undefined
    })
  },
}

export interface BuiltFile {
  file: string
  bytes: number
  gzipBytes: number
  /** The entries whose pages load it at once (empty: a chunk imported lazily). */
  loadedBy: string[]
}

/** The library and the demo app. */
export const DEFAULT_ENTRIES = { shoal: join(ROOT, 'src/browser.ts'), ui: join(ROOT, 'src/ui/main.tsx') }
/** Copied beside the app's script. */
const UI_STATIC = ['index.html', 'style.css']

export interface BrowserBuildOptions {
  /** Entry points by output name (default: DEFAULT_ENTRIES). */
  entries?: Record<string, string>
  minify?: boolean
}

/** Builds the entries into `outdir`; returns every file written with its size and gzip size. */
export async function buildBrowser(outdir: string, options: BrowserBuildOptions = {}): Promise<BuiltFile[]> {
  const entries = options.entries ?? DEFAULT_ENTRIES
  const result = await build({
    entryPoints: entries,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? true,
    sourcemap: false,
    metafile: true,
    logLevel: 'warning',
    chunkNames: 'chunks/[name]-[hash]',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [browserPorts],
  })
  const outputs = result.metafile.outputs
  const loadedBy = new Map<string, Set<string>>()
  const visit = (file: string, entry: string): void => {
    const by = loadedBy.get(file) ?? new Set<string>()
    if (by.has(entry)) return
    by.add(entry)
    loadedBy.set(file, by)
    for (const i of outputs[file]?.imports ?? []) if (i.kind === 'import-statement') visit(i.path, entry)
  }
  for (const [name, path] of Object.entries(entries)) {
    const out = Object.entries(outputs).find(([, o]) => o.entryPoint !== undefined && resolve(o.entryPoint) === resolve(path))
    if (out !== undefined) visit(out[0], name)
  }
  const files: BuiltFile[] = []
  for (const file of Object.keys(outputs)) {
    if (!file.endsWith('.js')) continue
    const bytes = await readFile(file)
    files.push({ file: resolve(file), bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length, loadedBy: [...(loadedBy.get(file) ?? [])].sort() })
  }
  if ('ui' in entries) for (const name of UI_STATIC) await copyFile(join(ROOT, 'src/ui', name), join(outdir, name))
  return files
}

/** Gzip bytes a page of `entry` loads before it runs (lazy chunks left out). */
export function pageBytes(files: readonly BuiltFile[], entry: string): number {
  return files.filter((f) => f.loadedBy.includes(entry)).reduce((n, f) => n + f.gzipBytes, 0)
}

async function main(): Promise<void> {
  const outdir = resolve(process.argv[2] ?? join(ROOT, 'dist/browser'))
  const files = await buildBrowser(outdir)
  const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`
  for (const f of files) console.log(`${(f.loadedBy.join('+') || 'lazy').padEnd(9)} ${kib(f.gzipBytes).padStart(10)} gzip  ${kib(f.bytes).padStart(10)}  ${f.file.slice(outdir.length + 1)}`)
  const lazy = files.filter((f) => f.loadedBy.length === 0).reduce((n, f) => n + f.gzipBytes, 0)
  console.log(`a page with Yjs tables loads ${kib(pageBytes(files, 'shoal'))} gzip of the library (the demo app ${kib(pageBytes(files, 'ui'))}); Automerge, when a table uses it: ${kib(lazy)} more`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
