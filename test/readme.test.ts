import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { tempDir } from './helpers/tempdir.js'

const root = fileURLToPath(new URL('..', import.meta.url))

it('runs the README library example as written', async () => {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  const example = /```ts\n([\s\S]*?)```/.exec(readme)![1]!
  const dir = await tempDir()
  const script = example
    .replace("from 'shoal'", `from ${JSON.stringify(join(root, 'src/index.ts'))}`)
    .replace("'./data/till-1'", JSON.stringify(join(dir, 'till-1')))
  const file = join(dir, 'example.mts')
  await writeFile(file, script)
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { cwd: root })
  expect(stdout).toContain("{\n  id: '7:A1',\n  store: '7',\n  name: 'Widget',\n  price: 2.75,\n  qty: 9,\n  notes: 'back shelf'\n}")
  expect(stdout).toMatch(/local 7:A1 null/)
})
