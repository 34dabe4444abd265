/*
 * Shoal mesh benchmark: real peers (libp2p over TCP on 127.0.0.1, LevelDB in temp folders), all in
 * this one process, as `shoal start` runs them (store + libp2p node + gossip + anti-entropy).
 *
 *   npm run bench:mesh                     full run (~3.5–4.5 min on 2 cores)
 *   npm run bench:mesh -- --quick          smoke run (small N, fewer samples, ~1.5 min)
 *   npm run bench:mesh -- --only ae        only some phases (comma list: latency,throughput,ae)
 *   npm run bench:mesh -- --engines yjs    only some engines
 *   npm run bench:mesh -- --no-save        do not write bench/results/mesh-*.json
 *   npm run bench:mesh -- --trust          every phase twice: open mesh, then a private mesh (mesh/trust.ts),
 *                                          side by side with the ratios
 *   npm run bench:mesh -- --trust --repeat 3   the two passes 3 times, alternating; each figure is the median
 *   npm run bench:mesh -- --cpu-prof-dir D write V8 CPU profiles of the throughput runs, the initial loads and the
 *                                          rounds with 1k rows differing to D (the process holds every peer: one profile)
 *
 * Phases:
 *   latency     3 peers, full mesh: single paced updates on A, time until the ChangeEvent on B / C;
 *               also the bytes of a single (not coalesced) change: Shoal gossip payload and TCP bytes.
 *   throughput  A + 2 and A + 5 peers: A issues N single-column changes in concurrent chunks; time
 *               until every other peer's digest roots equal A's; also bytes per coalesced change.
 *   ae          anti-entropy between A (holding N rows) and B: initial load of an empty B, a round
 *               with both in sync, and rounds with 1k rows differing (updated rows, new rows), with
 *               the bytes split into tree/hash traffic and row traffic by a shadow round.
 *
 * Every peer's data folder is under os.tmpdir() and removed afterwards. Progress goes to stderr;
 * the table goes to stdout; JSON to bench/results/.
 *
 * The harness (peers, waits, rounds) is in mesh/harness.ts, one module a phase beside it, the
 * table and targets in mesh/report.ts.
 */
import type { EngineName } from '../src/index.js'
import { NeighbourWatch } from './lib/cpu.js'
import { peakRssMiB } from './lib/memory.js'
import { median } from './lib/stats.js'
import { reportText } from './lib/report.js'
import { machine, srcHash, writeResults } from './lib/results.js'
import { fmt } from './lib/table.js'
import { installWireCounter } from './lib/wire.js'
import { benchAntiEntropy } from './mesh/anti-entropy.js'
import { args, COMPLETE, DIFF_ROWS, ENGINES, LOAD_CHUNK, PACE_MS, PARTITIONS, PHASES, progress, QUICK, REPEAT, SAVE, SIZES, TRUST, type Metrics } from './mesh/config.js'
import { allLogs } from './mesh/harness.js'
import { benchLatency } from './mesh/latency.js'
import { table, targets as judge, trustTable } from './mesh/report.js'
import { useTrust } from './mesh/trust.js'
import { benchThroughput } from './mesh/throughput.js'

async function main(): Promise<void> {
  const started = performance.now()
  const SRC_HASH = srcHash()
  installWireCounter()
  progress(`Shoal mesh bench${QUICK ? ' (quick)' : ''}; engines ${ENGINES.join(', ')}; phases ${[...PHASES].join(', ')}`)
  const runs: Record<string, Metrics[]> = {}
  const neighbours = new NeighbourWatch()
  const repeat = TRUST ? REPEAT : 1
  for (let round = 1; round <= repeat; round++) {
    for (const trust of TRUST ? [false, true] : [false]) {
      await useTrust(trust)
      const suffix = trust ? '+trust' : ''
      if (TRUST) progress(`${trust ? 'private mesh (trust on)' : 'open mesh (trust off)'}${repeat > 1 ? `, round ${round} of ${repeat}` : ''}`)
      const results: Partial<Record<EngineName, Metrics>> = {}
      for (const engine of ENGINES) results[engine] = {}
      if (PHASES.has('latency')) await neighbours.section(`latency${suffix}`, () => benchLatency(results))
      if (PHASES.has('throughput')) await neighbours.section(`throughput${suffix}`, () => benchThroughput(results))
      if (PHASES.has('ae')) for (const engine of ENGINES) await neighbours.section(`ae:${engine}${suffix}`, () => benchAntiEntropy(engine, results[engine]!))
      for (const engine of ENGINES) (runs[`${engine}${suffix}`] ??= []).push(results[engine]!)
    }
  }
  const all = Object.fromEntries(Object.entries(runs).map(([k, list]) => [k, medianMetrics(list)]))
  const results = Object.fromEntries(ENGINES.map((e) => [e, all[e]!])) as Partial<Record<EngineName, Metrics>>
  const peakRss = peakRssMiB()
  for (const m of Object.values(all)) m.peak_rss_mib = peakRss
  const trustRatios = TRUST ? trustTable(all) : null
  const neighbourLine = neighbours.finish()
  const seconds = (performance.now() - started) / 1000
  const targets = judge(results)
  const sizes = [
    `latency ${SIZES.latencySamples} samples over ${SIZES.latencyRows} rows, one update every ≥ ${PACE_MS} ms`,
    `throughput ${ENGINES.map((e) => `${e} ${SIZES.throughputChanges[e]}`).join(', ')} changes over ${SIZES.throughputRows} rows in chunks of ${SIZES.throughputChunk}, to ${SIZES.receivers.join(' and ')} peers`,
    `anti-entropy ${ENGINES.map((e) => `${e} ${SIZES.aeRows[e]}`).join(', ')} rows, ${DIFF_ROWS} differing`,
    `${PARTITIONS} partitions; gossip coalescing window at its default; syncWrites default (true)`,
  ].join('; ')
  const out = reportText({
    title: 'Shoal mesh benchmark',
    quick: QUICK,
    seconds,
    srcHash: SRC_HASH,
    sizes,
    table: table(all) + (trustRatios === null ? '' : `\n\n${trustRatios.text}`),
    targets: targets.text,
    notes: [`peak RSS of the process: ${fmt(peakRss)} MiB; peer log lines (refusals, sync errors): ${allLogs.length}`, neighbourLine],
  })
  process.stdout.write(out)
  if (allLogs.length > 0) progress(`peer log (first 10 of ${allLogs.length}):\n  ${allLogs.slice(0, 10).join('\n  ')}`)
  if (SAVE) {
    const record = {
      date: new Date().toISOString(),
      command: `node --expose-gc dist/bench/mesh.js ${args.argv.join(' ')}`.trim(),
      quick: QUICK,
      complete: COMPLETE,
      seconds,
      srcHash: SRC_HASH,
      machine: machine(),
      sizes: { ...SIZES, partitions: PARTITIONS, loadChunk: LOAD_CHUNK, paceMs: PACE_MS, diffRows: DIFF_ROWS },
      peakRssMiB: peakRss,
      results: all,
      ...(trustRatios === null ? {} : { trustRatios: trustRatios.json }),
      foreignCpuCores: neighbours.cores,
      targets: targets.json,
      peerLog: allLogs.slice(0, 50),
    }
    const files = await writeResults('mesh', QUICK ? 'quick' : COMPLETE ? 'full' : 'partial', record)
    progress(`wrote ${files.join(' and ')}${COMPLETE ? '' : ' (mesh-latest.json is only written by complete runs)'}`)
  }
}

/** Each numeric figure's median over the runs; anything else as the first run had it. */
function medianMetrics(list: readonly Metrics[]): Metrics {
  if (list.length === 1) return list[0]!
  const out: Metrics = { ...list[0]! }
  for (const key of Object.keys(out)) {
    const values = list.map((m) => m[key])
    if (values.every((v) => typeof v === 'number')) out[key] = median(values as number[])
  }
  out.runs = list.length
  return out
}

main().then(
  // libp2p and LevelDB handles are closed, but a stray timer must not keep the process alive.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
