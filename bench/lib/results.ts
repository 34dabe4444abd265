/*
 * Where results go: JSON under bench/results/ (`<bench>[-quick|-partial]-<time>.json`, and
 * `<bench>-latest.json` for a complete run), with the machine they were measured on and a hash of
 * the source measured.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceHash } from './source.js'

/** The repository's root: the nearest folder above this module with a package.json (from bench/lib/ or dist/bench/lib/ alike). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = up
  }
  return dir
}

export const resultsDir = (): string => join(repoRoot(), 'bench', 'results')

/** Hash of src/**\/*.ts as it is now (the bench scripts compile src right before running). */
export const srcHash = (): string => sourceHash(join(repoRoot(), 'src'))

/** The machine the numbers come from. */
export function machine(): Record<string, string | number> {
  let disk = 'unknown'
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n')
    const root = mounts.find((l) => l.split(' ')[1] === '/')
    if (root !== undefined) disk = `${root.split(' ')[0]} (${root.split(' ')[2]}), tmpdir ${tmpdir()}`
  } catch {
    // not Linux: the disk stays unknown
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    disk,
  }
}

export const machineLine = (): string =>
  Object.entries(machine())
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')

/** A run's kind: `quick` and `partial` runs never replace `<bench>-latest.json`. */
export type RunKind = 'full' | 'quick' | 'partial'

/** Writes `record` as `bench/results/<bench>[-kind]-<time>.json` (and `<bench>-latest.json` for a full run); returns the paths, relative to the repository. */
export async function writeResults(bench: string, kind: RunKind, record: object, date = new Date()): Promise<string[]> {
  const dir = resultsDir()
  await mkdir(dir, { recursive: true })
  const json = JSON.stringify(record, null, 2) + '\n'
  const stamp = date.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')
  const files = [join(dir, `${bench}${kind === 'full' ? '' : `-${kind}`}-${stamp}.json`)]
  if (kind === 'full') files.push(join(dir, `${bench}-latest.json`))
  for (const file of files) await writeFile(file, json)
  return files.map((f) => relative(repoRoot(), f))
}
