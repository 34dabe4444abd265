/*
 * Shoal storage benchmark: both row engines side by side, same machine, one run.
 *
 *   npm run bench                      full run (~10 min on 2 cores)
 *   npm run bench -- --quick           smoke run (small N, no 1M rows, one repetition)
 *   npm run bench -- --skip-1m         everything but the 1M-row memory/open phase (or SHOAL_BENCH_SKIP_1M=1)
 *   npm run bench -- --only batched    only some phases (comma list: single,batched,reads,remote,sizes,memory)
 *   npm run bench -- --engines yjs     only some engines
 *   npm run bench -- --no-save         do not write bench/results/*.json (for profiling runs)
 *   npm run bench -- --cpu-prof-dir D  write V8 CPU profiles of the timed batched-write and remote-apply sections to D
 *
 * Every measurement uses a fresh data folder under os.tmpdir(), removed afterwards. Memory and
 * open-time phases run in child processes so their RSS is not polluted by earlier phases.
 * Progress goes to stderr; the table goes to stdout; JSON to bench/results/.
 *
 * One module a phase in store/ (writes, reads, deltas, memory), the table and targets in store/report.ts.
 */
import type { EngineName } from '../src/index.js'
import { NeighbourWatch } from './lib/cpu.js'
import { hasGc } from './lib/memory.js'
import { reportText } from './lib/report.js'
import { machine, srcHash, writeResults } from './lib/results.js'
import { removeDir } from './lib/temp.js'
import { args, CHUNK, COMPLETE, ENGINES, PARTITIONS, PHASES, progress, QUICK, SAVE, SIZES, SKIP_1M, type Metrics } from './store/config.js'
import { benchRemote, benchSizes } from './store/deltas.js'
import { benchMemory, childLoad, childOpen } from './store/memory.js'
import { benchReads } from './store/reads.js'
import { table, targets as judge } from './store/report.js'
import { benchBatched, benchSingle } from './store/writes.js'

async function main(): Promise<void> {
  const started = performance.now()
  const argv = args.argv
  if (argv[0] === '--child') {
    const [, kind, ...rest] = argv
    const result = kind === 'load' ? await childLoad(rest[0] as EngineName, Number(rest[1]), rest[2]!) : await childOpen(rest[0]!)
    process.stdout.write(JSON.stringify(result) + '\n')
    return
  }
  const SRC_HASH = srcHash()
  if (!hasGc()) progress('note: run with node --expose-gc for stable memory numbers')
  progress(`Shoal storage bench${QUICK ? ' (quick)' : ''}${SKIP_1M ? ', 1M rows skipped' : ''}; engines ${ENGINES.join(', ')}; phases ${[...PHASES].join(', ')}`)
  const results: Partial<Record<EngineName, Metrics>> = {}
  const neighbours = new NeighbourWatch()
  for (const engine of ENGINES) {
    const m: Metrics = {}
    results[engine] = m
    const phase = <T>(name: string, fn: () => Promise<T>): Promise<T> => neighbours.section(`${engine}:${name}`, fn)
    if (PHASES.has('sizes')) benchSizes(engine, m)
    if (PHASES.has('single')) await phase('single', () => benchSingle(engine, m))
    let dataset: string | null = null
    if (PHASES.has('batched')) dataset = await phase('batched', () => benchBatched(engine, m))
    if (PHASES.has('reads')) await phase('reads', () => benchReads(engine, m, dataset))
    else if (dataset !== null) await removeDir(dataset)
    if (PHASES.has('remote')) await phase('remote', () => benchRemote(engine, m))
    if (PHASES.has('memory')) await phase('memory', () => benchMemory(engine, m))
  }
  const neighbourLine = neighbours.finish()
  const seconds = (performance.now() - started) / 1000
  const targets = judge(results)
  const out = reportText({
    title: 'Shoal storage benchmark',
    quick: QUICK,
    seconds,
    srcHash: SRC_HASH,
    sizes: `single ${SIZES.single} rows; batched ${ENGINES.map((e) => `${e} ${SIZES.batched[e]}`).join(', ')} rows (the reads run over these rows: ${SIZES.readOps} gets, hot set ${SIZES.hotSet} with rowCacheSize ${SIZES.warmCache}, cold rowCacheSize ${SIZES.coldCache}); remote ${ENGINES.map((e) => `${e} ${SIZES.remoteRows[e] * 2}`).join(', ')} deltas (puts + updates of ${ENGINES.map((e) => SIZES.remoteRows[e]).join('/')} rows); median of ${SIZES.runs}; ${PARTITIONS} partitions; default rowCacheSize except the reads; syncWrites default (true)`,
    table: table(results),
    targets: targets.text,
    notes: [neighbourLine],
  })
  process.stdout.write(out)
  if (SAVE) {
    const record = {
      date: new Date().toISOString(),
      command: `node --expose-gc dist/bench/store.js ${argv.join(' ')}`.trim(),
      quick: QUICK,
      complete: COMPLETE,
      skip1m: SKIP_1M,
      seconds,
      srcHash: SRC_HASH,
      machine: machine(),
      sizes: { ...SIZES, partitions: PARTITIONS, chunk: CHUNK },
      results,
      foreignCpuCores: neighbours.cores,
      targets: targets.json,
    }
    const files = await writeResults('store', QUICK ? 'quick' : COMPLETE ? 'full' : 'partial', record)
    progress(`wrote ${files.join(' and ')}${COMPLETE ? '' : ' (store-latest.json is only written by complete runs)'}`)
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
