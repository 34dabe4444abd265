import '../src/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { shares, targetSeed, type FuzzTarget, type TargetResult } from './harness.js'
import { TARGETS, targetNamed } from './targets/index.js'

/*
 * `npm run fuzz [-- --inputs N --seed S --target NAME[,NAME…] --jobs J]`: runs N inputs in total
 * (default 1,000,000), split over the targets by weight, each target in a worker thread watched
 * for hangs and crashes; prints a table, writes fuzz/results/fuzz-<time>.json and
 * fuzz-latest.json, and exits 1 if anything crashed, hung, or changed what is stored when it
 * must not. The same seed replays the same inputs.
 */

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    target: { type: 'string', multiple: true },
    jobs: { type: 'string', default: '1' },
    batch: { type: 'string', default: '500' },
    out: { type: 'string' },
    'hang-ms': { type: 'string', default: '60000' },
  },
})

/** Setting a target up (a store, a libp2p node, seeds from a twin store) on a busy machine. */
const SETUP_DEADLINE_MS = 600_000
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../..' : '..', import.meta.url))
const inputs = Number(values.inputs)
const seed = Number(values.seed)
const jobs = Math.max(1, Number(values.jobs))
const batch = Number(values.batch)
const hangMs = Number(values['hang-ms'])
for (const [name, n] of [['--inputs', inputs], ['--seed', seed], ['--jobs', jobs], ['--batch', batch], ['--hang-ms', hangMs]] as const) {
  if (!Number.isSafeInteger(n) || n < (name === '--seed' ? 0 : 1)) {
    console.error(`${name} must be a ${name === '--seed' ? 'non-negative' : 'positive'} integer`)
    process.exit(2)
  }
}
const targets: FuzzTarget[] = values.target === undefined ? [...TARGETS] : values.target.flatMap((t) => t.split(',')).map(targetNamed)
const counts = shares(targets, inputs)
const outDir = values.out ?? join(root, 'fuzz/results')

function emptyResult(target: FuzzTarget, n: number): TargetResult {
  return { target: target.name, what: target.what, seed: targetSeed(seed, target.name), inputs: n, changed: 0, unchanged: 0, refused: 0, crashes: 0, hangs: 0, storedChanged: 0, verifiedInputs: 0, verifiedFull: 0, ms: 0, findings: [] }
}

/** Runs one target in a worker; a worker that stops beating or dies is reported as a hang or crash. */
function runInWorker(target: FuzzTarget, n: number): Promise<TargetResult> {
  return new Promise((resolve) => {
    const heartbeat = new SharedArrayBuffer(4)
    const beat = new Int32Array(heartbeat)
    Atomics.store(beat, 0, -1)
    const started = performance.now()
    console.log(`  ${target.name}: started (${n} inputs)`)
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { target: target.name, inputs: n, seed, batch, heartbeat } })
    let last = -1
    let lastMove = Date.now()
    let reported = 0
    let done = false
    const finish = (result: TargetResult): void => {
      if (done) return
      done = true
      clearInterval(watchdog)
      resolve(result)
    }
    const failed = (kind: 'crash' | 'hang', detail: string): void => {
      const at = Atomics.load(beat, 0)
      const result = emptyResult(target, at + 1)
      result.crashes = 1
      result.hangs = kind === 'hang' ? 1 : 0
      result.ms = Math.round(performance.now() - started)
      result.findings.push({ kind, index: at, input: `(input #${at} of seed ${seed}; replay with --seed ${seed} --target ${target.name})`, detail })
      void worker.terminate()
      finish(result)
    }
    const watchdog = setInterval(() => {
      const now = Atomics.load(beat, 0)
      if (now !== last) {
        last = now
        lastMove = Date.now()
      } else if (now < 0 && Date.now() - lastMove > SETUP_DEADLINE_MS) failed('hang', `setting up the target took over ${SETUP_DEADLINE_MS} ms`)
      else if (now >= 0 && Date.now() - lastMove > hangMs) failed('hang', `input #${now} ran over ${hangMs} ms without returning (the thread was blocked or never settled)`)
    }, 1000)
    worker.on('message', (m: { type: 'progress'; done: number } | { type: 'result'; result: TargetResult }) => {
      if (m.type === 'result') {
        void worker.terminate()
        finish(m.result)
      } else if (m.done - reported >= n / 10 || m.done === n) {
        reported = m.done
        console.log(`  ${target.name}: ${m.done}/${n} (${Math.round((performance.now() - started) / 1000)} s)`)
      }
    })
    worker.on('error', (error) => failed('crash', `the worker died: ${error.stack ?? error.message}`))
    worker.on('exit', (code) => {
      if (!done) failed('crash', `the worker exited with code ${code} before reporting`)
    })
  })
}

function table(results: readonly TargetResult[], totalMs: number): string {
  const header = ['target', 'inputs', 'accepted', 'refused', 'crashes', 'hangs', 'stored changed', 'verified unchanged', 'time s', 'inputs/s']
  const rows = results.map((r) => [
    r.target,
    String(r.inputs),
    String(r.changed + r.unchanged),
    String(r.refused),
    String(r.crashes),
    String(r.hangs),
    String(r.storedChanged),
    r.verifiedInputs > 0 ? `${r.verifiedInputs} (${r.verifiedFull} in full)` : '-',
    (r.ms / 1000).toFixed(1),
    String(Math.round(r.inputs / Math.max(0.001, r.ms / 1000))),
  ])
  const sum = (f: (r: TargetResult) => number): string => String(results.reduce((s, r) => s + f(r), 0))
  rows.push(['total', sum((r) => r.inputs), sum((r) => r.changed + r.unchanged), sum((r) => r.refused), sum((r) => r.crashes), sum((r) => r.hangs), sum((r) => r.storedChanged), sum((r) => r.verifiedInputs), (totalMs / 1000).toFixed(1), ''])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

const started = performance.now()
const startedAt = new Date()
console.log(`fuzzing ${inputs} inputs, seed ${seed}, over ${targets.map((t, i) => `${t.name} (${counts[i]})`).join(', ')}; ${jobs} at a time`)
const results: TargetResult[] = new Array(targets.length)
let nextIndex = 0
await Promise.all(
  Array.from({ length: Math.min(jobs, targets.length) }, async () => {
    while (nextIndex < targets.length) {
      const i = nextIndex++
      results[i] = await runInWorker(targets[i]!, counts[i]!)
    }
  }),
)
const totalMs = Math.round(performance.now() - started)
console.log('\n' + table(results, totalMs))
for (const r of results) for (const f of r.findings) console.log(`\n[${r.target}] ${f.kind} at input #${f.index}: ${f.input}\n  ${f.detail.replace(/\n/g, '\n  ')}`)

const report = {
  command: `npm run fuzz -- ${process.argv.slice(2).join(' ')}`.trim(),
  startedAt: startedAt.toISOString(),
  seed,
  inputs,
  totalMs,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform },
  results,
}
await mkdir(outDir, { recursive: true })
const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
await writeFile(join(outDir, `fuzz-${stamp}.json`), JSON.stringify(report, null, 2) + '\n')
await writeFile(join(outDir, 'fuzz-latest.json'), JSON.stringify(report, null, 2) + '\n')
console.log(`\nwrote ${join(outDir, `fuzz-${stamp}.json`)}`)
const bad = results.reduce((s, r) => s + r.crashes + r.storedChanged, 0)
process.exitCode = bad > 0 ? 1 : 0
