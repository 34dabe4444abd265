import { existsSync } from 'node:fs'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../scripts/browser-build.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * The package as an app's bundler sees it: `import { BrowserPeer } from 'shoal'` in a project that
 * depends on it, bundled for the browser from the published files (dist/, built by `npm run build`
 * and by `npm ci` through "prepare"). The `browser` export condition and the "browser" field
 * must give a bundle with no Node built-in in it, Automerge in a chunk of its own.
 */

describe.skipIf(!existsSync(join(ROOT, 'dist/src/browser.js')))('the published package in a bundler', () => {
  it('bundles for the browser from dist/ through its exports and "browser" field', async () => {
    const app = await tempDir()
    await mkdir(join(app, 'node_modules'))
    await symlink(ROOT, join(app, 'node_modules', 'shoal'), 'dir')
    await writeFile(join(app, 'app.js'), "import { BrowserPeer, Shoal } from 'shoal'\nexport const start = () => BrowserPeer.start({ bootstrap: [] })\nexport const open = () => Shoal.open({ dir: 'x' })\n")
    const result = await build({
      entryPoints: [join(app, 'app.js')],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      outdir: join(app, 'out'),
      metafile: true,
      logLevel: 'silent',
      // as in an app's own node_modules: resolve the package through its name, not the symlink target
      preserveSymlinks: true,
    })
    const inputs = Object.keys(result.metafile.inputs)
    // each port's browser module, never its Node one
    for (const port of ['store/data-folder', 'store/database', 'sync/deflate', 'net/identity', 'net/peer-book', 'table/engines']) {
      expect(inputs.some((i) => i.endsWith(`dist/src/${port}.browser.js`)), port).toBe(true)
      expect(inputs.some((i) => i.endsWith(`dist/src/${port}.js`)), port).toBe(false)
    }
    expect(inputs.filter((i) => i.startsWith('node:'))).toEqual([])
    expect(inputs.some((i) => i.endsWith('dist/src/browser.js'))).toBe(true)
    expect(inputs.some((i) => i.includes('classic-level'))).toBe(false)
    // Automerge only in a lazily imported chunk
    const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint?.endsWith('app.js'))!
    const eager = new Set<string>()
    const visit = (file: string): void => {
      if (eager.has(file)) return
      eager.add(file)
      for (const i of result.metafile.outputs[file]?.imports ?? []) if (i.kind === 'import-statement') visit(i.path)
    }
    visit(entry[0])
    const eagerInputs = [...eager].flatMap((f) => Object.keys(result.metafile.outputs[f]!.inputs))
    expect(eagerInputs.some((i) => i.includes('@automerge'))).toBe(false)
    expect(inputs.some((i) => i.includes('@automerge'))).toBe(true)
  })
})
