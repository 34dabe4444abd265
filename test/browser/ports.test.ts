import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../scripts/browser-build.js'

/*
 * The browser build swaps each port module `x.ts` for its sibling `x.browser.ts`: esbuild's plugin
 * does it when we bundle from src/, package.json "browser" does it for bundlers building an app
 * from the published dist/. Both must name the same modules, and each pair must export the same names.
 */

async function browserPorts(dir = join(ROOT, 'src')): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await browserPorts(path)))
    else if (entry.name.endsWith('.browser.ts')) out.push(relative(ROOT, path))
  }
  return out.sort()
}

const exported = (source: string): string[] =>
  [...source.matchAll(/^export (?:async )?(?:function|const|class|interface|type) (\w+)/gm), ...source.matchAll(/^export (?:type )?\{([^}]+)\}/gm)]
    .flatMap((m) => m[1]!.split(','))
    .map((n) => n.trim().replace(/^type /, '').split(' as ').pop()!.trim())
    .filter((n) => n !== '')
    .sort()

describe('browser ports', () => {
  it('package.json "browser" lists exactly the .browser.ts modules of src/', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { browser: Record<string, string> }
    const fromPorts = Object.fromEntries(
      (await browserPorts()).map((p) => [`./dist/${p.replace(/\.browser\.ts$/, '.js')}`, `./dist/${p.replace(/\.ts$/, '.js')}`]),
    )
    expect(pkg.browser).toEqual(fromPorts)
  })

  it('each browser module exports what its Node sibling exports', async () => {
    const ports = await browserPorts()
    expect(ports.length).toBeGreaterThanOrEqual(5)
    for (const port of ports) {
      const browser = exported(await readFile(join(ROOT, port), 'utf8'))
      const node = exported(await readFile(join(ROOT, port.replace(/\.browser\.ts$/, '.ts')), 'utf8'))
      expect(browser, port).toEqual(node)
    }
  })
})
