/*
 * Peers benchmark: Shoal and alternative replication systems on the same workload, on this machine.
 *
 *   npm run bench:peers                              every system, warm-up + median of 3 runs
 *   npm run bench:peers -- --runs 1 --no-warmup      one run each
 *   npm run bench:peers -- --systems shoal,yjs       some systems
 *   npm run bench:peers -- --rows 2000               smaller workload
 *   npm run bench:peers -- --no-save                 do not write bench/results/peers-*.json
 *
 * Each (system, run) executes in a fresh child process (this file with --child), so peak RSS and
 * leftovers of one system never mix into another's numbers. In the child, 2 peers start (see each
 * adapter's `topology`), then:
 *   w1  peer A inserts N rows {id, store, sku, qty, shelf}; time until peer B holds all N rows
 *       (count polled, then snapshot checked equal to the expected rows).
 *   w2  peer A applies N single-column updates (every row once, in a scrambled order, alternating
 *       qty / shelf); time until B's snapshot equals the expected state.
 * Per workload: wall time from the first write to convergence on B (ms), time until A's writes were
 * committed locally (ms), bytes written to every socket of the process (net.Socket#write patched:
 * TCP and WebSocket alike, both directions, background traffic included; the idle rate right after
 * start is reported separately), peak RSS of the process sampled every 25 ms, and whether A's and B's
 * final snapshots are equal (and equal to the expected state).
 * Convergence is detected by polling B (count for w1, full snapshots for w2 — or, when the adapter
 * has fingerprint(), A's and B's fingerprints once A's writes are committed, then one confirming
 * snapshot), so times include up to one poll (the snapshot cost is reported as snapshot_ms).
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Socket } from 'node:net'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { canonical, sameRows, type StockChange, type StockRow, type SystemAdapter } from './adapter.js'

/** Modules under bench/peers/ (compiled to dist/bench/peers/<name>.js), in print order; Shoal first. */
const SYSTEMS = ['shoal', 'automerge-repo', 'automerge-repo-docs', 'yjs', 'orbitdb', 'gun']

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(name)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const THIS_FILE = fileURLToPath(import.meta.url)
const N = Number(option('--rows') ?? 10_000)
const PEERS = 2
const WORKLOAD_DEADLINE_MS = Number(option('--deadline-ms') ?? 180_000)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- workload --------------------------------------------------------------------------------------

const idOf = (i: number): string => `r${String(i).padStart(7, '0')}`

function makeRows(n: number): StockRow[] {
  return Array.from({ length: n }, (_, i) => ({ id: idOf(i), store: String(i % 8), sku: `sku-${i % 5000}`, qty: 1 + (i % 50), shelf: `A${i % 40}` }))
}

/** N single-column updates: row (i·7919 mod n) — a permutation when gcd(7919, n) = 1 — alternating qty / shelf. */
function makeChanges(n: number): StockChange[] {
  const step = gcd(7919, n) === 1 ? 7919 : 1
  return Array.from({ length: n }, (_, i) => {
    const id = idOf((i * step) % n)
    return i % 2 === 0 ? { id, values: { qty: 1000 + i } } : { id, values: { shelf: `B${i % 97}` } }
  })
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b)
}

function applyChanges(rows: StockRow[], changes: readonly StockChange[]): StockRow[] {
  const byId = new Map(rows.map((r) => [r.id, { ...r }]))
  for (const c of changes) Object.assign(byId.get(c.id)!, c.values)
  return [...byId.values()]
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
  snapshot_ms: number
  equal: boolean
  equal_expected: boolean
}

interface ChildResult {
  system: string
  topology?: string
  notes?: string
  start_ms: number
  idle_wire_bytes_per_s: number
  w1: WorkloadResult
  w2: WorkloadResult
  max_rss_bytes: number
}

async function until(what: string, check: () => Promise<boolean>, started: number, status: () => Promise<string>, everyMs = 10): Promise<void> {
  while (!(await check())) {
    if (performance.now() - started > WORKLOAD_DEADLINE_MS) throw new Error(`timed out after ${WORKLOAD_DEADLINE_MS} ms waiting for ${what}${await status()}`)
    await sleep(everyMs)
  }
}

async function runWorkload(
  a: SystemAdapter,
  expected: StockRow[],
  write: () => Promise<void>,
  converged: (snapshotMs: number[], committed: boolean) => Promise<boolean>,
  what: string,
): Promise<WorkloadResult> {
  gc()
  const rss = new RssSampler()
  const bytes0 = wireBytes
  const t0 = performance.now()
  let localMs = NaN
  const writing = write().then(() => {
    localMs = performance.now() - t0
  })
  const snapshotMs: number[] = []
  let failure: unknown = null
  writing.catch((e: unknown) => (failure = e))
  await until(
    what,
    async () => {
      if (failure !== null) throw failure
      return converged(snapshotMs, !Number.isNaN(localMs))
    },
    t0,
    async () => {
      const [ca, cb] = await Promise.all([a.count(0), a.count(1)])
      return ` (A holds ${ca} rows, B ${cb}; A's writes ${Number.isNaN(localMs) ? 'not yet committed' : `committed after ${localMs.toFixed(0)} ms`})`
    },
  )
  const convergeMs = performance.now() - t0
  await writing
  const wire = wireBytes - bytes0
  const peak = rss.stop()
  const sa = await a.snapshot(0)
  const sb = await a.snapshot(1)
  return {
    converge_ms: convergeMs,
    local_commit_ms: localMs,
    wire_bytes: wire,
    peak_rss_bytes: peak,
    snapshot_ms: snapshotMs.length === 0 ? 0 : snapshotMs.reduce((x, y) => x + y, 0) / snapshotMs.length,
    equal: sameRows(sa, sb),
    equal_expected: sameRows(sb, expected),
  }
}

async function loadAdapter(system: string): Promise<SystemAdapter> {
  const mod = (await import(`./${system}.js`)) as Record<string, unknown>
  const candidates = [mod.createAdapter, mod.default, ...Object.values(mod)]
  for (const c of candidates) {
    if (typeof c !== 'function') {
      if (c !== null && typeof c === 'object' && typeof (c as SystemAdapter).start === 'function' && typeof (c as SystemAdapter).snapshot === 'function') return c as SystemAdapter
      continue
    }
    const proto = (c as { prototype?: { start?: unknown } }).prototype
    if (proto !== undefined && typeof proto.start === 'function') return new (c as new () => SystemAdapter)()
    if (/adapter/i.test((c as { name: string }).name) || c === mod.createAdapter || c === mod.default) {
      const made = (await (c as () => unknown)()) as SystemAdapter
      if (made !== null && typeof made === 'object' && typeof made.start === 'function') return made
    }
  }
  throw new Error(`bench/peers/${system}.ts exports no SystemAdapter (expected createAdapter())`)
}

async function child(system: string): Promise<void> {
  installWireCounter()
  const adapter = await loadAdapter(system)
  const dir = await mkdtemp(join(tmpdir(), `shoal-peers-${system}-`))
  try {
    const s0 = performance.now()
    await adapter.start(PEERS, dir)
    const startMs = performance.now() - s0
    const idle0 = wireBytes
    await sleep(1000)
    const idleRate = wireBytes - idle0

    const rows = makeRows(N)
    const w1 = await runWorkload(
      adapter,
      rows,
      () => adapter.insert(0, rows),
      async (times) => {
        if ((await adapter.count(1)) < N) return false
        const t = performance.now()
        const ok = sameRows(await adapter.snapshot(1), rows)
        times.push(performance.now() - t)
        return ok
      },
      `peer B holding all ${N} rows`,
    )
    process.stderr.write(`[${system}] w1 ${w1.converge_ms.toFixed(0)} ms\n`)

    const changes = makeChanges(N)
    const expected = canonical(applyChanges(rows, changes))
    const w2 = await runWorkload(
      adapter,
      expected,
      () => adapter.update(0, changes),
      async (times, committed) => {
        if (adapter.fingerprint !== undefined) {
          if (!committed) return false
          const [fa, fb] = await Promise.all([adapter.fingerprint(0), adapter.fingerprint(1)])
          if (fa !== fb) return false
        }
        const t = performance.now()
        const ok = sameRows(await adapter.snapshot(1), expected)
        times.push(performance.now() - t)
        return ok
      },
      `peer B converged after ${N} updates`,
    )
    process.stderr.write(`[${system}] w2 ${w2.converge_ms.toFixed(0)} ms\n`)
    const result: ChildResult = {
      system: adapter.name,
      ...(adapter.topology === undefined ? {} : { topology: adapter.topology }),
      ...(adapter.notes === undefined ? {} : { notes: adapter.notes }),
      start_ms: startMs,
      idle_wire_bytes_per_s: idleRate,
      w1,
      w2,
      max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    }
    process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`)
  } finally {
    await Promise.race([adapter.stop().catch((e: unknown) => process.stderr.write(`[${system}] stop failed: ${String(e)}\n`)), sleep(10_000)])
    await rm(dir, { recursive: true, force: true })
  }
}

// ---- parent ----------------------------------------------------------------------------------------

function runChild(system: string): Promise<ChildResult> {
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, ['--expose-gc', THIS_FILE, '--child', system, '--rows', String(N), '--deadline-ms', String(WORKLOAD_DEADLINE_MS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString()
      process.stderr.write(d)
    })
    const killer = setTimeout(() => p.kill('SIGKILL'), WORKLOAD_DEADLINE_MS * 2 + 60_000)
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

interface Summary {
  system: string
  topology?: string
  notes?: string
  runs: number
  w1_ms: number
  w1_local_ms: number
  w1_wire_bytes: number
  w1_peak_rss_bytes: number
  w2_ms: number
  w2_local_ms: number
  w2_wire_bytes: number
  w2_peak_rss_bytes: number
  idle_wire_bytes_per_s: number
  max_rss_bytes: number
  equal: boolean
  raw: ChildResult[]
}

function summarize(results: ChildResult[]): Summary {
  const m = (f: (r: ChildResult) => number): number => median(results.map(f))
  const first = results[0]!
  return {
    system: first.system,
    ...(first.topology === undefined ? {} : { topology: first.topology }),
    ...(first.notes === undefined ? {} : { notes: first.notes }),
    runs: results.length,
    w1_ms: m((r) => r.w1.converge_ms),
    w1_local_ms: m((r) => r.w1.local_commit_ms),
    w1_wire_bytes: m((r) => r.w1.wire_bytes),
    w1_peak_rss_bytes: m((r) => r.w1.peak_rss_bytes),
    w2_ms: m((r) => r.w2.converge_ms),
    w2_local_ms: m((r) => r.w2.local_commit_ms),
    w2_wire_bytes: m((r) => r.w2.wire_bytes),
    w2_peak_rss_bytes: m((r) => r.w2.peak_rss_bytes),
    idle_wire_bytes_per_s: m((r) => r.idle_wire_bytes_per_s),
    max_rss_bytes: m((r) => r.max_rss_bytes),
    equal: results.every((r) => r.w1.equal && r.w1.equal_expected && r.w2.equal && r.w2.equal_expected),
    raw: results,
  }
}

const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—')
const mb = (v: number): string => fmt(v / 1e6, 2)

async function parent(): Promise<void> {
  const systems = (option('--systems') ?? SYSTEMS.join(',')).split(',')
  const runs = Number(option('--runs') ?? 3)
  const warmup = !flag('--no-warmup')
  const here = dirname(THIS_FILE)
  const summaries: Summary[] = []
  const skipped: Array<{ system: string; reason: string }> = []
  process.stderr.write(`peers bench: ${N} rows, ${PEERS} peers, ${warmup ? 'warm-up + ' : ''}${runs} run(s) per system, each in a fresh process\n`)
  for (const system of systems) {
    try {
      await import('node:fs/promises').then((fs) => fs.access(join(here, `${system}.js`)))
    } catch {
      skipped.push({ system, reason: `no module dist/bench/peers/${system}.js` })
      process.stderr.write(`skip ${system}: no module\n`)
      continue
    }
    const results: ChildResult[] = []
    try {
      if (warmup) {
        process.stderr.write(`${system}: warm-up\n`)
        await runChild(system)
      }
      for (let i = 0; i < runs; i++) {
        process.stderr.write(`${system}: run ${i + 1}/${runs}\n`)
        results.push(await runChild(system))
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      process.stderr.write(`skip ${system}: ${reason}\n`)
      if (results.length === 0) {
        skipped.push({ system, reason })
        continue
      }
      skipped.push({ system, reason: `only ${results.length} of ${runs} runs completed: ${reason}` })
    }
    summaries.push(summarize(results))
  }

  const shoal = summaries.find((s) => s.system === 'shoal')
  const ratio = (f: (s: Summary) => number, s: Summary): string => (shoal === undefined || s === shoal ? '' : `${fmt(f(shoal) / f(s), 2)}×`)
  const header = ['system', 'runs', 'w1 s', 'w1 MB wire', 'w1 peak RSS MB', 'w2 s', 'w2 MB wire', 'w2 peak RSS MB', 'equal', 'shoal/this w1 time', 'w1 bytes', 'w2 time', 'w2 bytes', 'peak RSS']
  const lines = summaries.map((s) => [
    s.system,
    String(s.runs),
    fmt(s.w1_ms / 1000, 2),
    mb(s.w1_wire_bytes),
    mb(s.w1_peak_rss_bytes),
    fmt(s.w2_ms / 1000, 2),
    mb(s.w2_wire_bytes),
    mb(s.w2_peak_rss_bytes),
    s.equal ? 'yes' : 'NO',
    ratio((x) => x.w1_ms, s),
    ratio((x) => x.w1_wire_bytes, s),
    ratio((x) => x.w2_ms, s),
    ratio((x) => x.w2_wire_bytes, s),
    ratio((x) => Math.max(x.w1_peak_rss_bytes, x.w2_peak_rss_bytes), s),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  console.log(`\nPeers benchmark: ${N} rows, ${PEERS} peers; w1 = ${N} inserts A→B, w2 = ${N} single-column updates A→B; medians of ${runs} run(s)${warmup ? ' after a warm-up' : ''}`)
  console.log(row(header))
  for (const l of lines) console.log(row(l))
  console.log('ratios: Shoal ÷ system (below 1 = Shoal faster / fewer bytes / less memory)')
  for (const s of summaries) console.log(`  ${s.system}: ${s.topology ?? ''}; ${s.notes ?? ''}; local commit w1 ${fmt(s.w1_local_ms)} ms, w2 ${fmt(s.w2_local_ms)} ms; idle ${fmt(s.idle_wire_bytes_per_s)} B/s`)
  for (const s of skipped) console.log(`  skipped ${s.system}: ${s.reason}`)

  if (!flag('--no-save')) {
    const out = resolve(here, '../../../bench/results')
    await mkdir(out, { recursive: true })
    const file = join(out, `peers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    await writeFile(
      file,
      JSON.stringify(
        { date: new Date().toISOString(), node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, memory_bytes: totalmem(), rows: N, peers: PEERS, runs, warmup, systems: summaries, skipped },
        null,
        2,
      ) + '\n',
    )
    console.log(`wrote ${file}`)
  }
}

const childSystem = option('--child')
if (childSystem !== undefined) {
  process.on('unhandledRejection', (error: unknown) => {
    process.stderr.write(`[${childSystem}] failed: unhandled rejection: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  })
  child(childSystem).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`[${childSystem}] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
} else {
  await parent()
}
