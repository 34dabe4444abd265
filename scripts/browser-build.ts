import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build, type Plugin } from 'esbuild'

/*
 * The browser build: src/browser.ts (the library and BrowserPeer) bundled with esbuild, each
 * port swapped for its `.browser.ts` sibling, Automerge in a chunk of its own that a page fetches
 * only when a table uses it. The same swaps are listed in package.json "browser" for bundlers
 * that build an app from the published dist/ (test/browser/package.test.ts keeps them equal).
 *
 *   npx tsx scripts/browser-build.ts [outdir]     (default dist/browser; part of npm run build)
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

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
  /** Loaded with the page (not a lazily imported chunk). */
  initial: boolean
}

export interface BrowserBuildOptions {
  /** Entry points by output name (default: { shoal: 'src/browser.ts' }). */
  entries?: Record<string, string>
  minify?: boolean
}

/** Builds the entries into `outdir`; returns every file written with its size and gzip size. */
export async function buildBrowser(outdir: string, options: BrowserBuildOptions = {}): Promise<BuiltFile[]> {
  const entries = options.entries ?? { shoal: join(ROOT, 'src/browser.ts') }
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
  const initial = new Set<string>()
  const outputs = result.metafile.outputs
  const visit = (file: string): void => {
    if (initial.has(file)) return
    initial.add(file)
    for (const i of outputs[file]?.imports ?? []) if (i.kind === 'import-statement') visit(i.path)
  }
  const declared = new Set(Object.values(entries).map((e) => resolve(e)))
  for (const [file, out] of Object.entries(outputs)) if (out.entryPoint !== undefined && declared.has(resolve(out.entryPoint))) visit(file)
  const files: BuiltFile[] = []
  for (const file of Object.keys(outputs)) {
    if (!file.endsWith('.js')) continue
    const bytes = await readFile(file)
    files.push({ file: resolve(file), bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length, initial: initial.has(file) })
  }
  return files
}

async function main(): Promise<void> {
  const outdir = resolve(process.argv[2] ?? join(ROOT, 'dist/browser'))
  const files = await buildBrowser(outdir)
  const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`
  for (const f of files) console.log(`${f.initial ? 'page ' : 'lazy '} ${kib(f.gzipBytes).padStart(10)} gzip  ${kib(f.bytes).padStart(10)}  ${f.file.slice(outdir.length + 1)}`)
  const page = files.filter((f) => f.initial).reduce((n, f) => n + f.gzipBytes, 0)
  console.log(`a page with Yjs tables loads ${kib(page)} gzip (Automerge, when a table uses it: ${kib(files.filter((f) => !f.initial).reduce((n, f) => n + f.gzipBytes, 0))} more)`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
