/*
 * Peers benchmark: Shoal and the systems users would pick instead, on the same workloads, on this
 * machine, in one run; results as medians and Shoal ÷ baseline ratios.
 *
 *   npm run bench:peers                                 everything (~15 min on 2 cores)
 *   npm run bench:peers -- --systems shoal,yjs          some systems
 *   npm run bench:peers -- --workloads pair             some groups: pair (w1 w2 w4 w5), five (w3), steady (w6)
 *   npm run bench:peers -- --runs 1 --no-warmup         one run each
 *   npm run bench:peers -- --rows 2000 --steady-rows 10000 --steady-seconds 20   smaller (a partial run)
 *   npm run bench:peers -- --no-save                    do not write bench/results/ or bench/README.md
 *
 * Workloads (rows shaped like the retail `stock` table: {id, store, sku, qty, shelf}; N = --rows):
 *   w1   peer A inserts N rows; time until peer B holds them all.
 *   w2   A applies N single-column updates (every row once, scrambled order, alternating qty/shelf);
 *        time until B converges.
 *   w3i  w1 with 5 peers: time until all 4 others hold the rows (fresh peers).
 *   w3u  w2 with 5 peers.
 *   w4   A and B concurrently apply N/2 single-column updates each to the same hot set of N/10 rows;
 *        time until A and B are equal (and every cell holds A's or B's last write to it).
 *   w5   B goes offline (its process state closed, storage kept), A applies N updates, B restarts:
 *        time from the restart until B has caught up (restart included).
 *   w6   steady state: A inserts --steady-rows rows (100k), B loads them (the time is reported as
 *        "w6 load"), then both idle in sync for --steady-seconds (60 s, three windows): bytes on the
 *        wire per minute.
 * Groups run in a fresh child process each (this file with --child <system> --group <g>), so peak RSS
 * and leftovers of one system never mix into another's numbers: pair = 2 peers running w1, w2, w4,
 * w5 in that order on the same data; five = 5 peers running w3i, w3u; steady = 2 peers running w6.
 * Each child measures per workload: wall time from the first write to convergence, time until the
 * writes were committed locally, bytes written to every socket of the process (net.Socket#write
 * patched: TCP and WebSocket alike, all peers, background traffic included), peak RSS of the process
 * (all its peers; sampled every 25 ms), and whether the final states are equal (and as expected).
 * Convergence is detected by polling (every 10 ms): counts first, then snapshots — or, when the
 * adapter has fingerprint(), fingerprints once the writes are committed, then one confirming
 * snapshot. A workload not converged within --deadline-s (60 s; steady load 240 s), or whose writes
 * fail, is a DNF: that child stops, and the system's remaining runs of that group are skipped (and,
 * when w1 failed, its other groups: they need the same data).
 * Fair play: the same data for every system; before the measured runs, one warm-up pair run with
 * N/10 rows per system (discarded: warms disk and module caches); --runs (3) measured runs of the
 * pair and five groups, medians reported; one steady run (its rate is the median of three windows).
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { Socket } from 'node:net'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuMark, foreignCores, sourceHash } from '../common.js'
import { canonical, sameRows, type StockChange, type StockRow, type SystemAdapter } from './adapter.js'
import { renderChart } from './chart.js'

/** Modules under bench/peers/ (compiled to dist/bench/peers/<name>.js), in print order; Shoal first. */
const SYSTEMS = ['shoal', 'yjs', 'automerge-repo', 'automerge-repo-docs', 'orbitdb', 'gun']
const GROUPS = { pair: ['w1', 'w2', 'w4', 'w5'], five: ['w3i', 'w3u'], steady: ['w6'] } as const
type Group = keyof typeof GROUPS
type WorkloadId = 'w1' | 'w2' | 'w3i' | 'w3u' | 'w4' | 'w5' | 'w6'
const WORKLOADS: WorkloadId[] = ['w1', 'w2', 'w3i', 'w3u', 'w4', 'w5', 'w6']

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(name)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const THIS_FILE = fileURLToPath(import.meta.url)
const DEFAULTS = { rows: 10_000, steadyRows: 100_000, steadySeconds: 60, deadlineS: 60, steadyDeadlineS: 240, runs: 3 }
const N = Number(option('--rows') ?? DEFAULTS.rows)
const STEADY_ROWS = Number(option('--steady-rows') ?? DEFAULTS.steadyRows)
const STEADY_SECONDS = Number(option('--steady-seconds') ?? DEFAULTS.steadySeconds)
const DEADLINE_MS = Number(option('--deadline-s') ?? DEFAULTS.deadlineS) * 1000
const STEADY_DEADLINE_MS = Number(option('--steady-deadline-s') ?? DEFAULTS.steadyDeadlineS) * 1000
const HOT = Math.max(1, Math.floor(N / 10))
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function label(w: WorkloadId, n = N): string {
  const k = (v: number): string => (v >= 1000 && v % 1000 === 0 ? `${v / 1000}k` : String(v))
  switch (w) {
    case 'w1':
      return `w1 ${k(n)} inserts A→B`
    case 'w2':
      return `w2 ${k(n)} updates A→B`
    case 'w3i':
      return `w3 ${k(n)} inserts A→4 peers`
    case 'w3u':
      return `w3 ${k(n)} updates A→4 peers`
    case 'w4':
      return `w4 2×${k(n / 2)} concurrent updates, ${k(Math.max(1, Math.floor(n / 10)))} hot rows`
    case 'w5':
      return `w5 catch-up after ${k(n)} updates offline`
    case 'w6':
      return `w6 load ${k(STEADY_ROWS)} rows A→B`
  }
}

// ---- data ------------------------------------------------------------------------------------------

const idOf = (i: number): string => `r${String(i).padStart(7, '0')}`

function makeRows(n: number): StockRow[] {
  return Array.from({ length: n }, (_, i) => ({ id: idOf(i), store: String(i % 8), sku: `sku-${i % 5000}`, qty: 1 + (i % 50), shelf: `A${i % 40}` }))
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b)
}

/** A scrambling step: i·step mod n visits every index once when gcd(step, n) = 1. */
function stepFor(n: number, step = 7919): number {
  return gcd(step, n) === 1 ? step : gcd(step + 2, n) === 1 ? step + 2 : 1
}

/** `count` single-column updates of the rows `targets` picks, alternating qty / shelf; values tagged by `tag`. */
function makeChanges(count: number, target: (i: number) => string, tag: number, shelf: string): StockChange[] {
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? { id: target(i), values: { qty: tag + i } } : { id: target(i), values: { shelf: `${shelf}${i % 97}` } }))
}

function everyRowOnce(n: number): (i: number) => string {
  const step = stepFor(n)
  return (i) => idOf((i * step) % n)
}

function applyChanges(rows: readonly StockRow[], changes: readonly StockChange[]): StockRow[] {
  const byId = new Map(rows.map((r) => [r.id, { ...r }]))
  for (const c of changes) Object.assign(byId.get(c.id)!, c.values)
  return canonical([...byId.values()])
}

/**
 * After concurrent writers: every cell a writer touched must hold one writer's LAST write to it
 * (whichever the system's conflict rule picks), every other cell its value before.
 */
function plausibleAfterConcurrent(base: readonly StockRow[], writers: ReadonlyArray<readonly StockChange[]>, final: readonly StockRow[]): boolean {
  const allowed = new Map<string, Set<unknown>>()
  for (const changes of writers) {
    const last = new Map<string, unknown>()
    for (const c of changes) for (const [k, v] of Object.entries(c.values)) last.set(`${c.id}\u0000${k}`, v)
    for (const [cell, v] of last) {
      const set = allowed.get(cell) ?? new Set()
      set.add(v)
      allowed.set(cell, set)
    }
  }
  const before = new Map(base.map((r) => [r.id, r]))
  if (final.length !== base.length) return false
  for (const row of final) {
    const old = before.get(row.id)
    if (old === undefined) return false
    for (const k of ['store', 'sku', 'qty', 'shelf'] as const) {
      const options = allowed.get(`${row.id}\u0000${k}`)
      if (options === undefined ? row[k] !== old[k] : !options.has(row[k])) return false
    }
  }
  return true
}

// ---- measurement -----------------------------------------------------------------------------------

let wireBytes = 0

function installWireCounter(): void {
  const proto = Socket.prototype as unknown as { write: (this: Socket, ...args: unknown[]) => boolean }
  const original = proto.write
  proto.write = function (this: Socket, ...args: unknown[]): boolean {
    const chunk = args[0]
    wireBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0
    return original.apply(this, args)
  }
}

class RssSampler {
  peak = process.memoryUsage.rss()
  private timer = setInterval(() => this.sample(), 25)
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss())
  }
  stop(): number {
    clearInterval(this.timer)
    this.sample()
    return this.peak
  }
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) {
    g()
    g()
  }
}

interface WorkloadResult {
  converge_ms: number
  local_commit_ms: number
  wire_bytes: number
  peak_rss_bytes: number
  /** Mean time of one confirming snapshot (polling cost included in converge_ms). */
  snapshot_ms: number
  /** Final states of the peers involved are equal. */
  equal: boolean
  /** …and are what the workload must produce (exact state, or for w4 a plausible merge). */
  expected: boolean
  /** w5: how long startPeer took (included in converge_ms). */
  restart_ms?: number
  /** w6: bytes on the wire per minute while idle in sync, and per window. */
  steady_bytes_per_min?: number
  steady_windows_bytes?: number[]
}

interface Dnf {
  dnf: string
}

type Outcome = WorkloadResult | Dnf
const isDnf = (o: Outcome | undefined): o is Dnf => o !== undefined && 'dnf' in o

interface ChildResult {
  system: string
  group: Group
  topology?: string
  notes?: string
  rows: number
  start_ms: number
  idle_wire_bytes_per_s: number
  workloads: Partial<Record<WorkloadId, Outcome>>
  max_rss_bytes: number
  /** CPU other processes used during the run, in average cores (the machine may be shared). */
  foreign_cores: number | null
}

class DnfError extends Error {}

function progress(text: string): void {
  process.stderr.write(`@@PROGRESS ${text}\n`)
}

/**
 * Runs one workload: `write` issues the writes (resolving when committed locally), `converged`
 * is polled until true. `from` marks where the clock starts (default: before the first write).
 */
async function measure(
  a: SystemAdapter,
  what: string,
  deadlineMs: number,
  write: () => Promise<void>,
  converged: (committed: boolean, snapshotMs: number[]) => Promise<boolean>,
  final: () => Promise<{ equal: boolean; expected: boolean }>,
  status: () => Promise<string>,
): Promise<WorkloadResult> {
  gc()
  const rss = new RssSampler()
  const bytes0 = wireBytes
  const t0 = performance.now()
  let localMs = NaN
  let failure: unknown = null
  const writing = write().then(
    () => {
      localMs = performance.now() - t0
    },
    (e: unknown) => {
      failure = e
    },
  )
  const snapshotMs: number[] = []
  try {
    for (;;) {
      if (failure !== null) throw new DnfError(`writes failed: ${failure instanceof Error ? failure.message : String(failure)}`)
      if (await converged(!Number.isNaN(localMs), snapshotMs)) break
      if (performance.now() - t0 > deadlineMs) throw new DnfError(`not converged after ${(deadlineMs / 1000).toFixed(0)} s waiting for ${what}${await status().catch(() => '')}`)
      await sleep(10)
    }
  } finally {
    rss.stop()
  }
  const convergeMs = performance.now() - t0
  await writing
  const wire = wireBytes - bytes0
  const peak = rss.peak
  return {
    converge_ms: convergeMs,
    local_commit_ms: localMs,
    wire_bytes: wire,
    peak_rss_bytes: peak,
    snapshot_ms: snapshotMs.length === 0 ? 0 : snapshotMs.reduce((x, y) => x + y, 0) / snapshotMs.length,
    ...(await final()),
  }
}

/** Polls: targets all hold `expected` (fingerprints against `source` first when the adapter has them). */
function reaches(a: SystemAdapter, source: number, targets: number[], expected: readonly StockRow[]) {
  return async (committed: boolean, times: number[]): Promise<boolean> => {
    if (a.fingerprint !== undefined) {
      if (!committed) return false
      const f = await a.fingerprint(source)
      for (const t of targets) if ((await a.fingerprint(t)) !== f) return false
    } else {
      for (const t of targets) if ((await a.count(t)) !== expected.length) return false
    }
    for (const t of targets) {
      const s = performance.now()
      const ok = sameRows(await a.snapshot(t), expected)
      times.push(performance.now() - s)
      if (!ok) return false
    }
    return true
  }
}

function finalAgainst(a: SystemAdapter, peers: number[], expected: readonly StockRow[]) {
  return async (): Promise<{ equal: boolean; expected: boolean }> => {
    const snaps = await Promise.all(peers.map((p) => a.snapshot(p)))
    return { equal: snaps.every((s) => sameRows(s, snaps[0]!)), expected: snaps.every((s) => sameRows(s, expected)) }
  }
}

function counts(a: SystemAdapter, peers: number[]) {
  return async (): Promise<string> => ` (rows held: ${(await Promise.all(peers.map(async (p) => `peer ${p} ${await a.count(p)}`))).join(', ')})`
}

async function runGroup(a: SystemAdapter, group: Group, results: Partial<Record<WorkloadId, Outcome>>): Promise<void> {
  const run = async (w: WorkloadId, body: () => Promise<WorkloadResult>): Promise<void> => {
    progress(`${w} start`)
    try {
      results[w] = await body()
    } catch (error) {
      // A system that throws (a failed write, a crashed peer) did not finish this workload either.
      const message = error instanceof DnfError ? error.message : `failed: ${error instanceof Error ? error.message : String(error)}`
      results[w] = { dnf: message }
      progress(`${w} dnf ${message}`)
      throw error instanceof DnfError ? error : new DnfError(message, { cause: error })
    }
    progress(`${w} done ${(results[w] as WorkloadResult).converge_ms.toFixed(0)}`)
  }
  const rows = makeRows(group === 'steady' ? STEADY_ROWS : N)
  const all = group === 'five' ? [1, 2, 3, 4] : [1]
  const insertsThenUpdates = async (wi: WorkloadId, wu: WorkloadId): Promise<StockRow[]> => {
    await run(wi, () =>
      measure(a, `${rows.length} rows on ${all.length} peer(s)`, group === 'steady' ? STEADY_DEADLINE_MS : DEADLINE_MS, () => a.insert(0, rows), reaches(a, 0, all, rows), finalAgainst(a, [0, ...all], rows), counts(a, [0, ...all])),
    )
    if (group === 'steady') return rows
    const changes = makeChanges(N, everyRowOnce(N), 1000, 'B')
    const expected = applyChanges(rows, changes)
    await run(wu, () =>
      measure(a, `${N} updates on ${all.length} peer(s)`, DEADLINE_MS, () => a.update(0, changes), reaches(a, 0, all, expected), finalAgainst(a, [0, ...all], expected), counts(a, [0, ...all])),
    )
    return expected
  }

  if (group === 'five') {
    await insertsThenUpdates('w3i', 'w3u')
    return
  }
  if (group === 'steady') {
    await insertsThenUpdates('w6', 'w6')
    const result = results.w6 as WorkloadResult
    // Settle (acks, pending anti-entropy) before measuring the idle rate.
    await sleep(2000)
    const windows: number[] = []
    const windowMs = (STEADY_SECONDS * 1000) / 3
    for (let i = 0; i < 3; i++) {
      const b0 = wireBytes
      await sleep(windowMs)
      windows.push(wireBytes - b0)
      progress(`w6 window ${i + 1}/3 ${windows[i]} B`)
    }
    const perMin = median(windows) * (60_000 / windowMs)
    const still = await finalAgainst(a, [0, 1], rows)()
    results.w6 = { ...result, steady_bytes_per_min: perMin, steady_windows_bytes: windows, equal: result.equal && still.equal, expected: result.expected && still.expected }
    return
  }

  let state = await insertsThenUpdates('w1', 'w2')

  // w4: both peers write the same hot rows at once.
  const hotStep = stepFor(N, 104_729)
  const hot = Array.from({ length: HOT }, (_, j) => idOf((j * hotStep) % N))
  const fromA = makeChanges(Math.floor(N / 2), (i) => hot[(i * 31) % HOT]!, 20_000, 'H')
  const fromB = makeChanges(Math.floor(N / 2), (i) => hot[(i * 37 + 5) % HOT]!, 40_000, 'K')
  const base = state
  let merged: StockRow[] = []
  await run('w4', () =>
    measure(
      a,
      'A and B equal after concurrent updates',
      DEADLINE_MS,
      async () => {
        await Promise.all([a.update(0, fromA), a.update(1, fromB)])
      },
      async (committed, times) => {
        if (a.fingerprint !== undefined) {
          if (!committed) return false
          if ((await a.fingerprint(0)) !== (await a.fingerprint(1))) return false
        } else if (!committed) return false
        const s = performance.now()
        const [sa, sb] = await Promise.all([a.snapshot(0), a.snapshot(1)])
        times.push(performance.now() - s)
        if (!sameRows(sa, sb)) return false
        merged = canonical(sa)
        return true
      },
      async () => {
        const [sa, sb] = await Promise.all([a.snapshot(0), a.snapshot(1)])
        return { equal: sameRows(sa, sb), expected: plausibleAfterConcurrent(base, [fromA, fromB], canonical(sa)) }
      },
      counts(a, [0, 1]),
    ),
  )
  state = merged

  // w5: B offline while A changes every row, then B restarts from its own storage.
  const offline = makeChanges(N, everyRowOnce(N), 60_000, 'C')
  const expected = applyChanges(state, offline)
  let restartMs = NaN
  await run('w5', async () => {
    await a.stopPeer(1)
    const tw = performance.now()
    await a.update(0, offline)
    progress(`w5 offline writes committed in ${(performance.now() - tw).toFixed(0)} ms`)
    const catchUp = reaches(a, 0, [1], expected)
    const r = await measure(
      a,
      `peer B catching up on ${N} updates`,
      DEADLINE_MS,
      async () => {
        const t = performance.now()
        await a.startPeer(1)
        restartMs = performance.now() - t
      },
      // B exists again only once startPeer has resolved.
      async (restarted, times) => restarted && catchUp(restarted, times),
      finalAgainst(a, [0, 1], expected),
      counts(a, [0, 1]),
    )
    return { ...r, restart_ms: restartMs }
  })
}

async function loadAdapter(system: string): Promise<SystemAdapter> {
  const mod = (await import(`./${system}.js`)) as { createAdapter?: () => SystemAdapter }
  if (typeof mod.createAdapter !== 'function') throw new Error(`bench/peers/${system}.ts exports no createAdapter()`)
  return mod.createAdapter()
}

async function child(system: string, group: Group): Promise<void> {
  installWireCounter()
  const mark = cpuMark()
  const adapter = await loadAdapter(system)
  const dir = await mkdtemp(join(tmpdir(), `shoal-peers-${system}-`))
  const workloads: ChildResult['workloads'] = {}
  let startMs = NaN
  let idleRate = NaN
  try {
    const s0 = performance.now()
    await adapter.start(group === 'five' ? 5 : 2, dir)
    startMs = performance.now() - s0
    progress(`started ${startMs.toFixed(0)}`)
    const idle0 = wireBytes
    await sleep(1000)
    idleRate = wireBytes - idle0
    await runGroup(adapter, group, workloads)
  } catch (error) {
    if (!(error instanceof DnfError)) throw error
  } finally {
    await Promise.race([adapter.stop().catch((e: unknown) => process.stderr.write(`[${system}] stop failed: ${String(e)}\n`)), sleep(10_000)])
    // Some systems (GUN) still flush to disk after stop(): retry, and never fail a run over cleanup.
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }).catch((e: unknown) => process.stderr.write(`[${system}] could not remove ${dir}: ${String(e)}\n`))
  }
  const result: ChildResult = {
    system: adapter.name,
    group,
    ...(adapter.topology === undefined ? {} : { topology: adapter.topology }),
    ...(adapter.notes === undefined ? {} : { notes: adapter.notes }),
    rows: N,
    start_ms: startMs,
    idle_wire_bytes_per_s: idleRate,
    workloads,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    foreign_cores: foreignCores(mark),
  }
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`)
}

// ---- parent ----------------------------------------------------------------------------------------

class ProgressBar {
  private done = 0
  private line = ''
  private readonly t0 = performance.now()
  private readonly tty = process.stderr.isTTY === true
  constructor(private total: number) {}
  grow(by: number): void {
    this.total += by
  }
  step(n = 1): void {
    this.done = Math.min(this.total, this.done + n)
  }
  show(text: string, permanent = false): void {
    const width = 24
    const filled = Math.round((width * this.done) / Math.max(1, this.total))
    const s = Math.round((performance.now() - this.t0) / 1000)
    const bar = `[${'#'.repeat(filled)}${'·'.repeat(width - filled)}] ${String(Math.round((100 * this.done) / Math.max(1, this.total))).padStart(3)}% ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
    this.line = `${bar} ${text}`
    if (this.tty) process.stderr.write(`\r\x1b[K${this.line}${permanent ? '\n' : ''}`)
    else process.stderr.write(`${this.line}\n`)
  }
  clear(): void {
    if (this.tty) process.stderr.write('\r\x1b[K')
  }
}

function runChild(system: string, group: Group, rows: number, onProgress: (text: string) => void): Promise<ChildResult> {
  const args = [
    '--expose-gc',
    THIS_FILE,
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
  ]
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
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

function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

interface WorkloadSummary {
  runs: number
  converge_ms: number
  local_commit_ms: number
  wire_bytes: number
  peak_rss_bytes: number
  equal: boolean
  expected: boolean
  restart_ms?: number
  steady_bytes_per_min?: number
  /** Set when a run did not finish (the medians then cover the finished runs only, if any). */
  dnf?: string
}

interface SystemSummary {
  system: string
  topology?: string
  notes?: string
  start_ms: number
  idle_wire_bytes_per_s: number
  max_rss_bytes: number
  workloads: Partial<Record<WorkloadId, WorkloadSummary>>
  /** Groups not run, and why. */
  not_run: Partial<Record<WorkloadId, string>>
  raw: ChildResult[]
}

function summarize(system: string, results: ChildResult[], notRun: Partial<Record<WorkloadId, string>>): SystemSummary {
  const first = results[0]
  const workloads: SystemSummary['workloads'] = {}
  for (const w of WORKLOADS) {
    const outcomes = results.map((r) => r.workloads[w]).filter((o): o is Outcome => o !== undefined)
    if (outcomes.length === 0) continue
    const done = outcomes.filter((o): o is WorkloadResult => !isDnf(o))
    const dnf = outcomes.find(isDnf)
    const m = (f: (r: WorkloadResult) => number | undefined): number => median(done.map((r) => f(r) ?? NaN))
    workloads[w] = {
      runs: done.length,
      converge_ms: m((r) => r.converge_ms),
      local_commit_ms: m((r) => r.local_commit_ms),
      wire_bytes: m((r) => r.wire_bytes),
      peak_rss_bytes: m((r) => r.peak_rss_bytes),
      equal: done.every((r) => r.equal),
      expected: done.every((r) => r.expected),
      ...(w === 'w5' ? { restart_ms: m((r) => r.restart_ms) } : {}),
      ...(w === 'w6' ? { steady_bytes_per_min: m((r) => r.steady_bytes_per_min) } : {}),
      ...(dnf === undefined ? {} : { dnf: dnf.dnf }),
    }
  }
  const pair = results.filter((r) => r.group === 'pair')
  return {
    system: first?.system ?? system,
    ...(first?.topology === undefined ? {} : { topology: first.topology }),
    ...(first?.notes === undefined ? {} : { notes: first.notes }),
    start_ms: median(pair.map((r) => r.start_ms)),
    idle_wire_bytes_per_s: median(pair.map((r) => r.idle_wire_bytes_per_s)),
    max_rss_bytes: Math.max(0, ...results.map((r) => r.max_rss_bytes)),
    workloads,
    not_run: notRun,
    raw: results,
  }
}

const fmt = (v: number | undefined, digits = 0): string => (v !== undefined && Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—')
const seconds = (ms: number): string => (ms >= 10_000 ? fmt(ms / 1000, 1) : fmt(ms / 1000, 2))

interface Metric {
  title: string
  unit: string
  value: (w: WorkloadSummary) => number | undefined
  show: (v: number) => string
  workloads: WorkloadId[]
}

const METRICS: Metric[] = [
  { title: 'Convergence time (s)', unit: 's', value: (w) => w.converge_ms, show: seconds, workloads: WORKLOADS },
  { title: 'Bytes on the wire (MB, all peers, both directions)', unit: 'MB', value: (w) => w.wire_bytes, show: (v) => fmt(v / 1e6, 2), workloads: WORKLOADS },
  { title: 'Peak RSS of the process holding all peers (MB)', unit: 'MB', value: (w) => w.peak_rss_bytes, show: (v) => fmt(v / 1e6, 0), workloads: WORKLOADS },
]

function cell(s: SystemSummary, w: WorkloadId, metric: Metric, shoal: SystemSummary | undefined): string {
  const ws = s.workloads[w]
  if (ws === undefined) return s.not_run[w] === undefined ? '—' : 'not run'
  if (ws.dnf !== undefined || ws.runs === 0) return 'DNF'
  const v = metric.value(ws)
  if (v === undefined || !Number.isFinite(v)) return '—'
  const text = metric.show(v) + (ws.equal && ws.expected ? '' : ' ⚠')
  const mine = shoal?.workloads[w]
  if (shoal === undefined || s === shoal || mine === undefined || mine.dnf !== undefined) return text
  const ratio = metric.value(mine)
  return ratio === undefined || !Number.isFinite(ratio) || v === 0 ? text : `${text} (${fmt(ratio / v, 2)}×)`
}

function tables(summaries: SystemSummary[]): string {
  const shoal = summaries.find((s) => s.system === 'shoal')
  const out: string[] = []
  for (const metric of METRICS) {
    const ws = metric.workloads.filter((w) => summaries.some((s) => s.workloads[w] !== undefined))
    out.push(`**${metric.title}** — in brackets: Shoal ÷ that system (below 1 = Shoal better)`, '')
    out.push(`| system | ${ws.map((w) => label(w)).join(' | ')} |`, `|---|${ws.map(() => '--:').join('|')}|`)
    for (const s of summaries) out.push(`| ${s.system} | ${ws.map((w) => cell(s, w, metric, shoal)).join(' | ')} |`)
    out.push('')
  }
  out.push('**Steady state and idle** — bytes on the wire while peers are in sync', '')
  out.push(`| system | idle, empty (B/s) | in sync with ${fmt(STEADY_ROWS)} rows (KB/min) | start (ms) |`, '|---|--:|--:|--:|')
  for (const s of summaries) {
    const w6 = s.workloads.w6
    const steady = w6 === undefined ? (s.not_run.w6 === undefined ? '—' : 'not run') : w6.dnf !== undefined ? 'DNF' : fmt((w6.steady_bytes_per_min ?? NaN) / 1000, 1)
    const mine = shoal?.workloads.w6?.steady_bytes_per_min
    const ratio = s !== shoal && mine !== undefined && w6?.steady_bytes_per_min !== undefined && w6.steady_bytes_per_min > 0 ? ` (${fmt(mine / w6.steady_bytes_per_min, 1)}×)` : ''
    out.push(`| ${s.system} | ${fmt(s.idle_wire_bytes_per_s)} | ${steady}${ratio} | ${fmt(s.start_ms)} |`)
  }
  out.push('')
  const problems: string[] = []
  for (const s of summaries) {
    for (const w of WORKLOADS) {
      const ws = s.workloads[w]
      if (ws?.dnf !== undefined) problems.push(`- ${s.system}, ${label(w)}: DNF — ${ws.dnf}${ws.runs > 0 ? ` (${ws.runs} other run(s) finished)` : ''}`)
      else if (ws !== undefined && !(ws.equal && ws.expected)) problems.push(`- ${s.system}, ${label(w)}: ⚠ final states ${ws.equal ? 'equal but not as expected' : 'NOT equal'}`)
      const why = s.not_run[w]
      if (why !== undefined) problems.push(`- ${s.system}, ${label(w)}: not run — ${why}`)
    }
  }
  if (problems.length > 0) out.push(...problems, '')
  return out.join('\n')
}

function chart(summaries: SystemSummary[], note: string): string {
  const ws = WORKLOADS.filter((w) => summaries.some((s) => s.workloads[w] !== undefined))
  return renderChart({
    title: `Time to convergence per workload (median; lower is better; log scale)`,
    workloads: ws.map((w) => label(w)),
    series: summaries.map((s) => ({
      system: s.system,
      values: ws.map((w) => {
        const x = s.workloads[w]
        return x === undefined || x.dnf !== undefined || x.runs === 0 ? null : x.converge_ms / 1000
      }),
    })),
    dnfLabels: summaries.map((s) => ws.map((w) => (s.workloads[w]?.dnf !== undefined ? `DNF (> ${(DEADLINE_MS / 1000).toFixed(0)} s or failed)` : 'not run'))),
    note,
  })
}

async function parent(): Promise<void> {
  const systems = (option('--systems') ?? SYSTEMS.join(',')).split(',')
  const groups = (option('--workloads') ?? 'pair,five,steady').split(',') as Group[]
  for (const g of groups) if (!(g in GROUPS)) throw new Error(`--workloads: unknown group '${g}' (pair, five, steady)`)
  const runs = Number(option('--runs') ?? DEFAULTS.runs)
  const warmup = !flag('--no-warmup')
  const here = dirname(THIS_FILE)
  const full =
    systems.join(',') === SYSTEMS.join(',') &&
    groups.length === 3 &&
    runs >= DEFAULTS.runs &&
    warmup &&
    N === DEFAULTS.rows &&
    STEADY_ROWS === DEFAULTS.steadyRows &&
    STEADY_SECONDS === DEFAULTS.steadySeconds
  const runMark = cpuMark()
  const jobsPer = (g: Group): number => (g === 'steady' ? 1 : runs) * GROUPS[g].length
  const bar = new ProgressBar(systems.length * ((warmup ? GROUPS.pair.length : 0) + groups.reduce((t, g) => t + jobsPer(g), 0)))
  process.stderr.write(
    `peers bench: ${systems.join(', ')}; ${N} rows (steady ${STEADY_ROWS}); ${warmup ? 'warm-up + ' : ''}${runs} run(s) of ${groups.join(', ')}; each group in a fresh process\n`,
  )
  const summaries: SystemSummary[] = []
  for (const system of systems) {
    try {
      await import('node:fs/promises').then((fs) => fs.access(join(here, `${system}.js`)))
    } catch {
      bar.show(`skip ${system}: no module dist/bench/peers/${system}.js`, true)
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

  const date = new Date().toISOString()
  const foreign = foreignCores(runMark)
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${fmt(totalmem() / 2 ** 30, 1)} GiB, Node ${process.version}`
  const text = tables(summaries)
  console.log(
    `\nPeers benchmark — ${date.slice(0, 16)}Z, ${machine}; ${N} rows (steady ${STEADY_ROWS}); medians of ${runs} run(s)${warmup ? ' after a warm-up' : ''}; other processes used ${foreign === null ? '?' : fmt(foreign, 2)} cores on average\n`,
  )
  console.log(text)
  for (const s of summaries) console.log(`${s.system}: ${s.topology ?? ''}. ${s.notes ?? ''}`)

  if (flag('--no-save')) return
  const root = resolve(here, '../../..')
  const out = join(root, 'bench/results')
  await mkdir(out, { recursive: true })
  const stamp = date.replace(/[:.]/g, '-')
  const json = {
    date,
    machine,
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memory_bytes: totalmem(),
    source_sha256: sourceHash(join(root, 'src')),
    foreign_cores: foreign,
    command: `npm run bench:peers${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    settings: { rows: N, hot_rows: HOT, steady_rows: STEADY_ROWS, steady_seconds: STEADY_SECONDS, deadline_s: DEADLINE_MS / 1000, steady_deadline_s: STEADY_DEADLINE_MS / 1000, runs, warmup, groups },
    full,
    systems: summaries,
  }
  const file = join(out, `peers-${full ? '' : 'partial-'}${stamp}.json`)
  await writeFile(file, JSON.stringify(json, null, 2) + '\n')
  console.log(`wrote ${file}`)
  const note = `${machine}; ${date.slice(0, 10)}; npm run bench:peers`
  const svg = chart(summaries, note)
  const svgFile = join(out, full ? 'peers-latest.svg' : `peers-partial-${stamp}.svg`)
  await writeFile(svgFile, svg)
  console.log(`wrote ${svgFile}`)
  if (!full && !flag('--update-readme')) {
    console.log('partial run (not every system, group, default size and run count): bench/README.md and peers-latest.* left as they are')
    return
  }
  if (full) await writeFile(join(out, 'peers-latest.json'), JSON.stringify(json, null, 2) + '\n')
  const readme = join(root, 'bench/README.md')
  const START = '<!-- peers-results:start -->'
  const END = '<!-- peers-results:end -->'
  const current = await readFile(readme, 'utf8')
  const i = current.indexOf(START)
  const j = current.indexOf(END)
  if (i < 0 || j < i) {
    console.log(`bench/README.md has no ${START} … ${END} markers: not updated`)
    return
  }
  const block = [
    START,
    `Latest run: ${date.slice(0, 16).replace('T', ' ')} UTC on ${machine}; \`${json.command}\`; ${N} rows, hot set ${HOT}, steady ${fmt(STEADY_ROWS)} rows for ${STEADY_SECONDS} s;`,
    `medians of ${runs} runs${warmup ? ' after a warm-up' : ''} (steady: one run, median of three windows); other processes used ${foreign === null ? '?' : fmt(foreign, 2)} cores on average during the run. Raw numbers: \`bench/results/${file.split('/').pop()}\`.`,
    '',
    `![Time to convergence per workload and system](results/${svgFile.split('/').pop()})`,
    '',
    text,
    END,
  ].join('\n')
  await writeFile(readme, current.slice(0, i) + block + current.slice(j + END.length))
  console.log('updated bench/README.md')
}

const childSystem = option('--child')
if (childSystem !== undefined) {
  const group = (option('--group') ?? 'pair') as Group
  process.on('unhandledRejection', (error: unknown) => {
    process.stderr.write(`[${childSystem}] failed: unhandled rejection: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  })
  child(childSystem, group).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`[${childSystem}] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
} else {
  await parent()
}
