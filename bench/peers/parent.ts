/*
 * The parent process of the peers benchmark: runs every system's groups in fresh child processes
 * (this same script with --child), shows progress, collects what the children report, and hands
 * the summaries to the report.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { relative } from 'node:path'
import { cpuMark, foreignCores } from '../lib/cpu.js'
import { ProgressBar } from '../lib/progress.js'
import { repoRoot } from '../lib/results.js'
import { args, DEADLINE_MS, DEFAULTS, GROUPS, label, N, STEADY_DEADLINE_MS, STEADY_ROWS, STEADY_SECONDS, SYSTEMS, WORKLOADS, type Group, type WorkloadId, SHOAL_ENGINE, CPU_PROF_DIR } from './config.js'
import { isDnf, type ChildResult, type Dnf } from './measure.js'
import { publish, seconds, summarize, type SystemSummary } from './report.js'
import { prepareSystems, systemModule } from './systems.js'

const { flag, option } = args

function runChild(system: string, group: Group, rows: number, onProgress: (text: string) => void): Promise<ChildResult> {
  const childArgs = [
    '--expose-gc',
    ...(CPU_PROF_DIR === null ? [] : ['--cpu-prof', '--cpu-prof-dir', CPU_PROF_DIR]),
    process.argv[1]!,
    '--child',
    system,
    '--group',
    group,
    '--rows',
    String(rows),
    '--steady-rows',
    String(STEADY_ROWS),
    '--steady-seconds',
    String(STEADY_SECONDS),
    '--deadline-s',
    String(DEADLINE_MS / 1000),
    '--steady-deadline-s',
    String(STEADY_DEADLINE_MS / 1000),
    '--shoal-engine',
    SHOAL_ENGINE,
  ]
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, childArgs, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let partial = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => {
      partial += d.toString()
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        if (line.startsWith('@@PROGRESS ')) onProgress(line.slice('@@PROGRESS '.length))
        else {
          err += `${line}\n`
          if (flag('--verbose')) process.stderr.write(`\n  ${system}: ${line}\n`)
        }
      }
    })
    const budget = group === 'steady' ? 2 * STEADY_DEADLINE_MS + STEADY_SECONDS * 1000 : 5 * DEADLINE_MS
    const killer = setTimeout(() => p.kill('SIGKILL'), budget + 120_000)
    p.on('exit', (code, signal) => {
      clearTimeout(killer)
      const line = out.split('\n').find((l) => l.startsWith('@@RESULT '))
      if (line !== undefined) ok(JSON.parse(line.slice('@@RESULT '.length)) as ChildResult)
      else {
        const lines = err.trim().split('\n')
        const why = lines.find((l) => l.includes('] failed: ')) ?? lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.slice(-3).join(' | ')
        fail(new Error(`exit ${code ?? signal}: ${why.replace(/^\[[^\]]*\] failed: /, '').slice(0, 600)}`))
      }
    })
  })
}

export async function parent(): Promise<void> {
  const systems = (option('--systems') ?? SYSTEMS.join(',')).split(',')
  const groups = (option('--workloads') ?? 'pair,five,steady').split(',') as Group[]
  for (const g of groups) if (!(g in GROUPS)) throw new Error(`--workloads: unknown group '${g}' (pair, five, steady)`)
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown system '${s}' (${SYSTEMS.join(', ')})`)
  const runs = Number(option('--runs') ?? DEFAULTS.runs)
  const warmup = !flag('--no-warmup')
  const full =
    systems.join(',') === SYSTEMS.join(',') &&
    groups.length === 3 &&
    runs >= DEFAULTS.runs &&
    warmup &&
    N === DEFAULTS.rows &&
    STEADY_ROWS === DEFAULTS.steadyRows &&
    STEADY_SECONDS === DEFAULTS.steadySeconds
  const runMark = cpuMark()
  await prepareSystems(systems, (line) => process.stderr.write(`${line}\n`))
  const jobsPer = (g: Group): number => (g === 'steady' ? 1 : runs) * GROUPS[g].length
  const bar = new ProgressBar(systems.length * ((warmup ? GROUPS.pair.length : 0) + groups.reduce((t, g) => t + jobsPer(g), 0)))
  process.stderr.write(
    `peers bench: ${systems.join(', ')}; ${N} rows (steady ${STEADY_ROWS}); ${warmup ? 'warm-up + ' : ''}${runs} run(s) of ${groups.join(', ')}; each group in a fresh process\n`,
  )
  const summaries: SystemSummary[] = []
  for (const system of systems) {
    if (!existsSync(systemModule(system))) {
      bar.show(`skip ${system}: no module ${relative(repoRoot(), systemModule(system))}`, true)
      continue
    }
    const results: ChildResult[] = []
    const notRun: Partial<Record<WorkloadId, string>> = {}
    let w1Failed: string | null = null
    const job = async (group: Group, rows: number, what: string): Promise<ChildResult | null> => {
      let stepped = 0
      const show = (text: string): void => {
        const [w, state, ...rest] = text.split(' ')
        if (state === 'done' || state === 'dnf') {
          bar.step()
          stepped++
        }
        bar.show(`${system} ${what}: ${w} ${state === 'done' ? `${seconds(Number(rest[0]))} s` : state === 'dnf' ? 'DNF' : (state ?? '')}${state === 'window' ? ` ${rest.join(' ')}` : ''}`)
      }
      try {
        const r = await runChild(system, group, rows, show)
        bar.step(GROUPS[group].length - stepped)
        return r
      } catch (error) {
        bar.step(GROUPS[group].length - stepped)
        const reason = error instanceof Error ? error.message : String(error)
        bar.show(`${system} ${what}: failed: ${reason}`, true)
        return { system, group, rows, start_ms: NaN, idle_wire_bytes_per_s: NaN, workloads: { [GROUPS[group][0]]: { dnf: `process failed: ${reason}` } }, max_rss_bytes: 0, foreign_cores: null }
      }
    }
    if (warmup) {
      const r = await job('pair', Math.max(100, Math.round(N / 10)), 'warm-up')
      if (r !== null && isDnf(r.workloads.w1)) w1Failed = `its warm-up with ${Math.round(N / 10)} rows did not finish w1: ${r.workloads.w1.dnf}`
    }
    for (const group of groups) {
      const n = group === 'steady' ? 1 : runs
      for (let i = 0; i < n; i++) {
        if (w1Failed !== null) {
          for (const w of GROUPS[group]) notRun[w] ??= w1Failed
          bar.step(GROUPS[group].length * (n - i))
          break
        }
        const r = await job(group, N, `${group}${n > 1 ? ` ${i + 1}/${n}` : ''}`)
        if (r === null) continue
        results.push(r)
        const dnf = GROUPS[group].find((w) => isDnf(r.workloads[w]))
        if (dnf !== undefined) {
          if (dnf === 'w1') w1Failed = `w1 did not finish: ${(r.workloads.w1 as Dnf).dnf}`
          bar.step(GROUPS[group].length * (n - i - 1))
          for (const w of GROUPS[group]) if (r.workloads[w] === undefined) notRun[w] ??= `${label(dnf)} did not finish`
          break
        }
      }
    }
    const s = summarize(system, results, notRun)
    summaries.push(s)
    bar.show(`${system}: ${WORKLOADS.filter((w) => s.workloads[w] !== undefined).map((w) => `${w} ${s.workloads[w]!.dnf !== undefined ? 'DNF' : `${seconds(s.workloads[w]!.converge_ms)} s`}`).join(', ')}`, true)
  }
  bar.clear()

  await publish(summaries, { full, runs, warmup, groups, foreign: foreignCores(runMark), save: !flag('--no-save'), updateReadme: flag('--update-readme') })
}
