/*
 * Where each system's adapter lives. Shoal's is compiled with the benchmark (dist/bench/peers/);
 * the baselines are a package of their own, bench/peers/baselines/ (package.json and lock of its
 * own), compiled into bench/peers/baselines/dist/ so that they resolve their imports (OrbitDB,
 * Helia, GUN, automerge-repo, y-leveldb, …) from that package's node_modules, never from Shoal's.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { repoRoot } from '../lib/results.js'

const SHOAL = 'shoal'

export const baselinesDir = (): string => join(repoRoot(), 'bench', 'peers', 'baselines')

/** The compiled module of a system's adapter (exporting createAdapter()). */
export function systemModule(system: string): string {
  if (system === SHOAL) return join(dirname(fileURLToPath(import.meta.url)), `${SHOAL}.js`)
  // The baselines' tsconfig has bench/peers/ as its root (the adapters import the contract's types from ../adapter.ts).
  return join(baselinesDir(), 'dist', 'baselines', `${system}.js`)
}

/**
 * Before a run that selects any baseline: installs the baselines package when its node_modules is
 * missing (`npm ci`, from its lock), then compiles it (incremental: quick when nothing changed).
 */
export async function prepareSystems(systems: readonly string[], log: (line: string) => void): Promise<void> {
  if (systems.every((s) => s === SHOAL)) return
  const dir = baselinesDir()
  if (!existsSync(join(dir, 'node_modules'))) {
    log(`installing the baselines' own packages (first run): npm ci --prefix ${dir}`)
    await run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['ci', '--prefix', dir, '--no-audit', '--no-fund'])
  }
  log('compiling the baselines (bench/peers/baselines/tsconfig.json)')
  const tsc = createRequire(join(repoRoot(), 'package.json')).resolve('typescript/bin/tsc')
  await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')])
}

function run(command: string, argv: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const p = spawn(command, argv, { stdio: ['ignore', 'inherit', 'inherit'] })
    p.on('error', fail)
    p.on('exit', (code, signal) => (code === 0 ? ok() : fail(new Error(`${command} ${argv.join(' ')} exited with ${code ?? signal}`))))
  })
}
