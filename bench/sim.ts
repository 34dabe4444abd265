/*
 * Simulator figures: how many seeded schedules run clean, and how convergence time and traffic
 * grow with the number of peers, in model mode (N = 10, 100, 1,000) and on the real stack
 * (N = 5, 10, 20).
 *
 *   npm run bench:sim              full run (~10 min on 2 cores)
 *   npm run bench:sim -- --quick   smoke run (~1 min)
 *   npm run bench:sim -- --roles   only the price of roles in model mode (~1 min): the same
 *                                  scenario as an open mesh, as a mesh with roles where everyone
 *                                  may write everything (the same operations, every change a signed
 *                                  changeset checked by every receiver), and as shipped (a rogue)
 *
 * Prints a table; writes bench/results/sim-<time>.json (and sim-latest.json for full runs;
 * sim-roles-<time>.json and sim-roles-latest.json for --roles).
 */
import '../src/polyfill.js'
import { join } from 'node:path'
import { runModel } from '../src/sim/model/model-runner.js'
import { randomScenario } from '../src/sim/core/random-scenario.js'
import { runReal } from '../src/sim/real/real-runner.js'
import { loadScenario, parseScenario, type Scenario } from '../src/sim/core/scenario.js'
import type { SimSummary } from '../src/sim/core/summary.js'
import { machine, repoRoot, writeResults } from './lib/results.js'
import { quantile } from './lib/stats.js'

const QUICK = process.argv.includes('--quick')
const ROLES = process.argv.includes('--roles')
const SCHEDULES = QUICK ? 50 : 500
const MODEL_PEERS = QUICK ? [10, 100] : [10, 100, 1000]
const REAL_PEERS = QUICK ? [5] : [5, 10, 20]
const RUNS = QUICK ? 1 : 3
const REAL_TIME_SCALE = 3

/** Nearest-rank percentile, null where there are no values (as the results JSON has it). */
function percentile(values: number[], p: number): number | null {
  const v = quantile(values, p / 100)
  return Number.isNaN(v) ? null : v
}

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

interface Point {
  mode: 'model' | 'real'
  peers: number
  runs: number
  failed: number
  convergeP50Ms: number | null
  convergeP99Ms: number | null
  messagesP50: number | null
  bytesP50: number | null
  wallP50Ms: number | null
  replays: string[]
}

function point(mode: 'model' | 'real', peers: number, runs: SimSummary[]): Point {
  const converge = runs.flatMap((s) => (s.timeToConvergeMs === null ? [] : [s.timeToConvergeMs]))
  return {
    mode,
    peers,
    runs: runs.length,
    failed: runs.filter((s) => !s.ok).length,
    convergeP50Ms: percentile(converge, 50),
    convergeP99Ms: percentile(converge, 99),
    messagesP50: percentile(runs.map((s) => s.traffic.messages), 50),
    bytesP50: percentile(runs.map((s) => s.traffic.bytes), 50),
    wallP50Ms: percentile(runs.map((s) => s.wallMs), 50),
    replays: runs.filter((s) => !s.ok).map((s) => s.replay),
  }
}

/** The real-stack sweep scenario: a split in halves under a steady workload, then the heal. */
function realScenario(peers: number, seed: number): Scenario {
  return parseScenario(
    {
      name: 'real-sweep',
      mode: 'real',
      seed,
      peers,
      durationMs: 6_000,
      settleMs: 120_000,
      sampleMs: 500,
      workload: { opsPerSecond: 20, keys: 40, hotKeys: 5, hotFraction: 0.5, mix: { put: 2, update: 3, increment: 4, delete: 0.5, text: 1 } },
      faults: [{ kind: 'partition', groups: 'halves', at: 1_000, for: 5_000 }],
    },
    'bench/sim.ts',
  )
}

async function main(): Promise<void> {
  const started = performance.now()
  // 1. Random schedules (model mode).
  log(`random schedules: ${SCHEDULES} seeds`)
  const schedules: SimSummary[] = []
  for (let seed = 1; seed <= SCHEDULES; seed++) {
    schedules.push(await runModel(randomScenario(seed), { replay: `shoal sim --random --seed ${seed}` }))
    if (seed % 50 === 0) log(`  ${seed}/${SCHEDULES}`)
  }
  const scheduleFigures = {
    schedules: schedules.length,
    failed: schedules.filter((s) => !s.ok).length,
    peers: schedules.reduce((n, s) => n + s.peers, 0),
    acknowledgedOps: schedules.reduce((n, s) => n + s.ops.acknowledged, 0),
    faults: schedules.reduce((n, s) => n + s.faults.length, 0),
    replays: schedules.filter((s) => !s.ok).map((s) => s.replay),
  }

  // 2. Model sweep.
  const sweepScenario = await loadScenario(join(repoRoot(), 'peers', 'scenarios', 'model-sweep-1000.yaml'))
  const points: Point[] = []
  for (const peers of MODEL_PEERS) {
    const runs: SimSummary[] = []
    for (let i = 0; i < RUNS; i++) {
      log(`model sweep: N=${peers}, run ${i + 1}/${RUNS}`)
      const scenario = parseScenario({ ...sweepScenario, peers, seed: i + 1, carries: undefined, faults: [{ kind: 'partition', groups: 'halves', at: 2_000, for: 13_000 }] }, 'model sweep')
      runs.push(await runModel(scenario, { replay: `shoal sim --scenario peers/scenarios/model-sweep-1000.yaml --peers ${peers} --seed ${i + 1}` }))
    }
    points.push(point('model', peers, runs))
  }

  // 3. Real-stack sweep.
  for (const peers of REAL_PEERS) {
    const runs: SimSummary[] = []
    for (let i = 0; i < RUNS; i++) {
      log(`real-stack sweep: N=${peers}, run ${i + 1}/${RUNS}`)
      // timeScale 3: wall ms per scenario ms, so 20 peers on 2 cores keep up with the schedule.
      runs.push(await runReal(realScenario(peers, i + 1), { timeScale: REAL_TIME_SCALE, replay: `(bench/sim.ts real-sweep N=${peers} seed ${i + 1})` }))
    }
    points.push(point('real', peers, runs))
  }

  console.log(`\nrandom model schedules: ${scheduleFigures.schedules} schedules × ${(scheduleFigures.peers / scheduleFigures.schedules).toFixed(1)} peers avg, ${scheduleFigures.acknowledgedOps} acknowledged operations, ${scheduleFigures.faults} faults → ${scheduleFigures.failed} failed (divergence or lost write)\n`)
  console.log(`${'MODE'.padEnd(7)}${'PEERS'.padEnd(7)}${'RUNS'.padEnd(6)}${'FAILED'.padEnd(8)}${'CONVERGE p50'.padEnd(14)}${'p99'.padEnd(10)}${'MESSAGES p50'.padEnd(14)}${'BYTES p50'.padEnd(13)}WALL p50`)
  for (const p of points) {
    console.log(`${p.mode.padEnd(7)}${String(p.peers).padEnd(7)}${String(p.runs).padEnd(6)}${String(p.failed).padEnd(8)}${`${p.convergeP50Ms} ms`.padEnd(14)}${`${p.convergeP99Ms} ms`.padEnd(10)}${String(p.messagesP50).padEnd(14)}${String(p.bytesP50).padEnd(13)}${p.wallP50Ms} ms`)
  }
  const result = {
    date: new Date().toISOString(),
    command: `npm run bench:sim${QUICK ? ' -- --quick' : ''}`,
    quick: QUICK,
    seconds: (performance.now() - started) / 1000,
    machine: machine(),
    schedules: scheduleFigures,
    realTimeScale: REAL_TIME_SCALE,
    sweep: points,
  }
  const files = await writeResults('sim', QUICK ? 'quick' : 'full', result)
  log(`wrote ${files.join(' and ')} (${result.seconds.toFixed(0)} s)`)
}

/** The roles scenario three ways, side by side (ratios against the open mesh). */
async function roles(): Promise<void> {
  const started = performance.now()
  const shipped = await loadScenario(join(repoRoot(), 'peers', 'scenarios', 'roles.yaml'))
  const everyone = { write: { '*': '*' as const }, read: { '*': '*' as const } }
  const variants: Array<[string, Scenario]> = [
    ['open mesh (no roles)', { ...shipped, mesh: null, workload: { ...shipped.workload, outsideRights: [] } }],
    ['roles, all may write', { ...shipped, mesh: { ...shipped.mesh!, tables: {}, otherTables: everyone }, workload: { ...shipped.workload, outsideRights: [] } }],
    ['roles as shipped (p4 rogue)', shipped],
  ]
  const rows: Array<{ variant: string; seed: number; ok: boolean; acknowledged: number; forbidden: number; refusals: number; convergeMs: number | null; messages: number; gossipBytes: number; syncBytes: number; wallMs: number }> = []
  for (let seed = shipped.seed; seed < shipped.seed + 3; seed++) {
    for (const [variant, scenario] of variants) {
      log(`roles: ${variant}, seed ${seed}`)
      const s = await runModel({ ...scenario, seed })
      rows.push({ variant, seed, ok: s.ok, acknowledged: s.ops.acknowledged, forbidden: s.roles?.forbiddenWrites ?? 0, refusals: s.roles?.refusals ?? 0, convergeMs: s.timeToConvergeMs, messages: s.traffic.messages, gossipBytes: s.traffic.gossipBytes, syncBytes: s.traffic.syncBytes, wallMs: s.wallMs })
    }
  }
  const sum = (variant: string, pick: (r: (typeof rows)[number]) => number): number => rows.filter((r) => r.variant === variant).reduce((n, r) => n + pick(r), 0)
  const base = variants[0]![0]
  console.log(`\n${'VARIANT'.padEnd(30)}${'OK'.padEnd(5)}${'ACKED'.padEnd(8)}${'FORBIDDEN'.padEnd(11)}${'REFUSED'.padEnd(9)}${'MESSAGES'.padEnd(16)}${'GOSSIP BYTES'.padEnd(20)}${'SYNC BYTES'.padEnd(20)}WALL (3 seeds)`)
  for (const [variant] of variants) {
    const ratio = (pick: (r: (typeof rows)[number]) => number): string => `×${(sum(variant, pick) / sum(base, pick)).toFixed(2)}`
    const all = rows.filter((r) => r.variant === variant)
    console.log(
      `${variant.padEnd(30)}${String(all.every((r) => r.ok)).padEnd(5)}${String(sum(variant, (r) => r.acknowledged)).padEnd(8)}${String(sum(variant, (r) => r.forbidden)).padEnd(11)}${String(sum(variant, (r) => r.refusals)).padEnd(9)}` +
        `${`${sum(variant, (r) => r.messages)} ${ratio((r) => r.messages)}`.padEnd(16)}${`${sum(variant, (r) => r.gossipBytes)} ${ratio((r) => r.gossipBytes)}`.padEnd(20)}${`${sum(variant, (r) => r.syncBytes)} ${ratio((r) => r.syncBytes)}`.padEnd(20)}${sum(variant, (r) => r.wallMs)} ms ${ratio((r) => r.wallMs)}`,
    )
  }
  const result = {
    date: new Date().toISOString(),
    command: 'npm run bench:sim -- --roles',
    seconds: (performance.now() - started) / 1000,
    machine: machine(),
    runs: rows,
  }
  const files = await writeResults('sim-roles', 'full', result)
  log(`wrote ${files.join(' and ')} (${result.seconds.toFixed(0)} s)`)
}

await (ROLES ? roles() : main())
