import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ShoalError } from '../errors.js'
import { runModel, type RunOptions } from '../sim/model/model-runner.js'
import { randomScenario } from '../sim/core/random-scenario.js'
import { renderRunReport, renderSweepReport } from '../sim/report/report.js'
import { MAX_DURATION_MS, MAX_PEERS, MAX_SEED, parseScenario, readScenarioInput, ScenarioError, type Scenario } from '../sim/core/scenario.js'
import type { SimSummary, SweepPoint, SweepSummary } from '../sim/core/summary.js'

export interface SimOptions {
  scenario?: string
  random: boolean
  peers?: string
  seed?: string
  mode?: string
  duration?: string
  sweep?: string
  runs?: string
  out?: string
  /** Real-stack mode: wall-clock ms per scenario ms (a busy machine needs more than 1). */
  timeScale?: string
  json: boolean
}

/** A simulation found violations: the summary says which; exit 1. */
export class SimFailedError extends ShoalError {
  constructor(message: string) {
    super('SIM_FAILED', message)
  }
}

function integer(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+$/.test(value) ? Number(value) : NaN
  if (!(n >= min && n <= max)) throw new ScenarioError(`--${flag} must be an integer from ${min} to ${max} (got '${value}')`)
  return n
}

/** The scenario from a file or flags, with flag overrides applied before validation. */
async function scenarioFor(options: SimOptions, overrides: { peers?: number; seed?: number }): Promise<Scenario> {
  const seed = overrides.seed ?? integer('seed', options.seed, 0, MAX_SEED)
  const peers = overrides.peers ?? integer('peers', options.peers, 1, MAX_PEERS)
  const duration = integer('duration', options.duration, 1, MAX_DURATION_MS)
  if (options.random) {
    if (options.scenario !== undefined) throw new ScenarioError('--random and --scenario exclude each other')
    const s = randomScenario(seed ?? 1, { ...(peers === undefined ? {} : { minPeers: peers, maxPeers: peers }), ...(duration === undefined ? {} : { durationMs: duration }) })
    return options.mode === 'real' ? { ...s, mode: 'real' } : s
  }
  const raw = options.scenario === undefined ? {} : await readScenarioInput(options.scenario)
  const base = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {}
  const input = {
    ...base,
    ...(seed === undefined ? {} : { seed }),
    ...(peers === undefined ? {} : { peers }),
    ...(duration === undefined ? {} : { durationMs: duration }),
    ...(options.mode === undefined ? {} : { mode: options.mode }),
  }
  return parseScenario(options.scenario === undefined || base === raw ? input : raw, options.scenario ?? 'flags')
}

function replayCommand(options: SimOptions, scenario: Scenario): string {
  const parts = ['shoal sim']
  if (options.scenario !== undefined) parts.push(`--scenario ${options.scenario}`)
  if (options.random) parts.push('--random')
  parts.push(`--seed ${scenario.seed}`, `--peers ${scenario.peers}`, `--mode ${scenario.mode}`)
  if (options.duration !== undefined) parts.push(`--duration ${options.duration}`)
  if (options.timeScale !== undefined) parts.push(`--time-scale ${options.timeScale}`)
  return parts.join(' ')
}

/** A bar redrawn in place on a terminal; on a pipe, a line every 10 %. */
function progressBar(label: string): { update: RunOptions['onProgress']; done: () => void } {
  const tty = process.stderr.isTTY === true
  let lastTenth = -1
  return {
    update: (fraction, phase) => {
      const pct = Math.floor(fraction * 100)
      if (tty) {
        const filled = Math.round(fraction * 30)
        process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${String(pct).padStart(3)}% ${phase.padEnd(24)}`)
      } else if (Math.floor(pct / 10) > lastTenth) {
        lastTenth = Math.floor(pct / 10)
        process.stderr.write(`${label}: ${pct}% ${phase}\n`)
      }
    },
    done: () => {
      if (tty) process.stderr.write('\n')
    },
  }
}

async function runOne(scenario: Scenario, options: SimOptions, label: string): Promise<SimSummary> {
  const bar = progressBar(label)
  const runOptions: RunOptions = { replay: replayCommand(options, scenario), ...(bar.update === undefined ? {} : { onProgress: bar.update }) }
  try {
    if (scenario.mode === 'real') {
      const timeScale = options.timeScale === undefined ? 1 : Number(options.timeScale)
      if (!(timeScale >= 0.1 && timeScale <= 100)) throw new ScenarioError(`--time-scale must be a number from 0.1 to 100 (got '${options.timeScale}')`)
      // Loaded only here: model mode needs neither libp2p nor LevelDB.
      const { runReal } = await import('../sim/real/real-runner.js')
      return await runReal(scenario, { ...runOptions, timeScale })
    }
    return await runModel(scenario, runOptions)
  } finally {
    bar.done()
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

function printSummary(s: SimSummary, files: { json: string; html: string }): void {
  const line = (k: string, v: string): void => console.log(`${k.padEnd(12)}${v}`)
  line('scenario', `${s.name} (${s.mode} mode, ${s.peers} peers, seed ${s.seed})`)
  line('result', s.ok ? 'OK: converged, no lost acknowledged write' : `FAILED: ${s.violations.length} violation(s)`)
  for (const v of s.violations.slice(0, 20)) console.log(`            - ${v}`)
  line('operations', `${s.ops.invoked} invoked, ${s.ops.acknowledged} acknowledged, ${s.ops.failed} failed`)
  if (s.roles !== undefined) line('roles', `${s.roles.forbiddenWrites} writes outside their author's rights, ${s.roles.refusals} deliveries of them refused by other peers${s.roles.enforced ? '' : ' (enforcement off)'}`)
  line('converged', s.timeToConvergeMs === null ? 'no' : `${s.timeToConvergeMs} ms after the network healed (at ${s.healedAt} ms)`)
  line('traffic', `${s.traffic.messages} messages, ${s.traffic.bytes} bytes (gossip ${s.traffic.gossipMessages} / anti-entropy ${s.traffic.syncMessages} messages)`)
  if (s.traceHash !== null) line('trace', s.traceHash)
  line('took', `${s.wallMs} ms wall for ${s.durationMs} ms simulated`)
  line('summary', files.json)
  line('report', files.html)
  if (!s.ok) line('replay', s.replay)
}

/** `shoal sim`: one run (or a sweep over peer counts), JSON summary + HTML report, exit 1 on violations. */
export async function sim(options: SimOptions): Promise<void> {
  if (options.mode !== undefined && options.mode !== 'model' && options.mode !== 'real') throw new ScenarioError(`--mode must be model or real (got '${options.mode}')`)
  if (options.sweep !== undefined) return sweep(options)
  const scenario = await scenarioFor(options, {})
  const summary = await runOne(scenario, options, scenario.name)
  const out = resolve(options.out ?? join('sim-results', `${scenario.name}-seed${scenario.seed}`))
  await mkdir(out, { recursive: true })
  const files = { json: join(out, 'summary.json'), html: join(out, 'report.html') }
  await writeFile(files.json, JSON.stringify(summary, null, 2) + '\n')
  await writeFile(files.html, renderRunReport(summary))
  if (options.json) console.log(JSON.stringify({ ...summary, series: undefined }, null, 2))
  else printSummary(summary, files)
  if (!summary.ok) throw new SimFailedError(`${summary.violations.length} violation(s) in ${scenario.name}, seed ${scenario.seed}; replay: ${summary.replay}`)
}

async function sweep(options: SimOptions): Promise<void> {
  const counts = (options.sweep ?? '').split(',').map((v) => integer('sweep', v.trim(), 1, 100_000)!)
  const runs = integer('runs', options.runs, 1, 10_000) ?? 3
  const firstSeed = integer('seed', options.seed, 0, 2 ** 31 - 1) ?? 1
  const points: SweepPoint[] = []
  const all: SweepSummary['runs'] = []
  let name = 'sweep'
  for (const peers of counts) {
    const summaries: SimSummary[] = []
    for (let i = 0; i < runs; i++) {
      const scenario = await scenarioFor(options, { peers, seed: firstSeed + i })
      name = scenario.name
      const s = await runOne(scenario, options, `${scenario.name} N=${peers} seed ${scenario.seed}`)
      summaries.push(s)
      const { series: _series, ...rest } = s
      all.push(rest)
    }
    const converge = summaries.map((s) => s.timeToConvergeMs ?? NaN).filter((v) => !Number.isNaN(v))
    points.push({
      peers,
      mode: summaries[0]!.mode,
      runs,
      failed: summaries.filter((s) => !s.ok).length,
      convergeMs: { p50: percentile(converge, 50), p99: percentile(converge, 99), max: Math.max(...converge) },
      messages: { p50: percentile(summaries.map((s) => s.traffic.messages), 50) },
      bytes: { p50: percentile(summaries.map((s) => s.traffic.bytes), 50) },
      wallMs: { p50: percentile(summaries.map((s) => s.wallMs), 50) },
    })
  }
  const summary: SweepSummary = { name, points, runs: all }
  const out = resolve(options.out ?? join('sim-results', `${name}-sweep`))
  await mkdir(out, { recursive: true })
  await writeFile(join(out, 'sweep.json'), JSON.stringify(summary, null, 2) + '\n')
  await writeFile(join(out, 'report.html'), renderSweepReport(summary))
  if (options.json) console.log(JSON.stringify(summary, null, 2))
  else {
    console.log(`${'PEERS'.padEnd(7)}${'RUNS'.padEnd(6)}${'FAILED'.padEnd(8)}${'CONVERGE p50'.padEnd(14)}${'p99'.padEnd(10)}${'MESSAGES p50'.padEnd(14)}${'BYTES p50'.padEnd(13)}WALL p50`)
    for (const p of points) {
      console.log(`${String(p.peers).padEnd(7)}${String(p.runs).padEnd(6)}${String(p.failed).padEnd(8)}${`${p.convergeMs.p50} ms`.padEnd(14)}${`${p.convergeMs.p99} ms`.padEnd(10)}${String(p.messages.p50).padEnd(14)}${String(p.bytes.p50).padEnd(13)}${p.wallMs.p50} ms`)
    }
    console.log(`\nsummary ${join(out, 'sweep.json')}\nreport  ${join(out, 'report.html')}`)
  }
  const failed = points.reduce((n, p) => n + p.failed, 0)
  if (failed > 0) throw new SimFailedError(`${failed} run(s) of the sweep found violations; see ${join(out, 'sweep.json')} for their replay commands`)
}
