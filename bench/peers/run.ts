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
 *   npm run bench:peers -- --shoal-engine columns       Shoal's table on another row engine (yjs by default)
 *   npm run bench:peers -- --cpu-prof-dir /tmp/prof     V8 CPU profiles of the children (one per group)
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
 *
 * Shoal's adapter (shoal.ts) runs from this project; the baselines' adapters live in their own
 * package, bench/peers/baselines/ (own package.json and lock, so OrbitDB's Node ≥ 22 and the rest
 * stay out of Shoal's install): the first run that selects a baseline installs it (`npm ci` there)
 * and compiles it (systems.ts). Modules: config (settings), data, measure (one workload),
 * workloads (w1–w6), child, parent, report.
 */
import '../../src/polyfill.js'
import { child } from './child.js'
import { args, type Group } from './config.js'
import { parent } from './parent.js'

const { option } = args

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
