import '../src/polyfill.js'
import { parseConfig } from '../src/config.js'
import { Peer } from '../src/peer/peer.js'
import { topicFor } from '../src/sync/gossip.js'
import { parseArgs } from './lib/args.js'
import { eventually, sleep } from './lib/poll.js'
import { reportText } from './lib/report.js'
import { machine, srcHash, writeResults } from './lib/results.js'
import { fmt, markdownTable } from './lib/table.js'
import { removeDir, tempDir } from './lib/temp.js'
import { installWireCounter, wireTotal } from './lib/wire.js'

/*
 * What peers in sync send when nothing happens: two (or --peers N) `Peer`s on 127.0.0.1 as
 * `shoal start` runs them (default settings), one table, every byte written to their sockets
 * counted (bench/lib/wire.ts). Measured after the join has settled (--settle-s, default 5 s) over
 * a window long enough to hold several of every periodic exchange (--seconds, default 240: libp2p
 * pings, anti-entropy rounds and their back-off, peer discovery), once with an empty table and
 * once with --rows rows in sync. `bench:peers` reports the first second after start instead, which
 * is mostly the join itself.
 *
 *   npm run bench:idle                      2 peers, 0 and 10,000 rows, 240 s each (~9 min)
 *   npm run bench:idle -- --seconds 60      shorter windows (a partial run)
 */

const args = parseArgs()
const PEERS = Number(args.option('--peers') ?? 2)
const SECONDS = Number(args.option('--seconds') ?? 240)
const SETTLE_S = Number(args.option('--settle-s') ?? 5)
const ROWS = Number(args.option('--rows') ?? 10_000)
const SAVE = !args.flag('--no-save')
const PARTIAL = args.option('--seconds') !== undefined || args.option('--peers') !== undefined || args.option('--rows') !== undefined || args.option('--settle-s') !== undefined
const GOAL_BYTES_PER_S = 100
const t0 = performance.now()
const progress = (m: string): void => void process.stderr.write(`[idle ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`)

const TABLE = { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' } }

interface Case {
  rows: number
  bytesPerSecond: number
  seconds: number
}

async function measure(rows: number): Promise<Case> {
  const dirs: string[] = []
  const peers: Peer[] = []
  try {
    for (let i = 0; i < PEERS; i++) {
      const dir = await tempDir('idle', `p${i}`)
      dirs.push(dir)
      const config = { ...parseConfig({ tables: [TABLE], open: true }, 'bench'), data: dir, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: i === 0 ? [] : [peers[0]!.node.multiaddrs()[0]!.toString()], mdns: false, http: null }
      peers.push(await Peer.start(config, {}))
    }
    if (rows > 0) {
      const ops = Array.from({ length: rows }, (_, i) => ({ table: 'stock', op: 'put' as const, key: `r${i}`, values: { store: String(i % 4), sku: `S${i}`, qty: i % 9, shelf: `shelf ${i % 50}` } }))
      for (let i = 0; i < rows; i += 2000) await peers[0]!.db.applyBatch(ops.slice(i, i + 2000))
      await eventually('every peer holds the rows', async () => {
        for (const p of peers) if (((await p.db.status()).tables.find((t) => t.name === 'stock')?.rows ?? 0) < rows) return false
        return true
      }, 300_000, 200)
    }
    await eventually('the gossip mesh', () => peers.every((p) => p.node.pubsub.getSubscribers(topicFor('_tables', '')).length >= PEERS - 1), 30_000)
    await sleep(SETTLE_S * 1000)
    const before = wireTotal()
    const start = performance.now()
    await sleep(SECONDS * 1000)
    const seconds = (performance.now() - start) / 1000
    const bytesPerSecond = (wireTotal() - before) / seconds
    progress(`${rows} rows in sync: ${bytesPerSecond.toFixed(1)} B/s over ${seconds.toFixed(0)} s`)
    return { rows, bytesPerSecond, seconds }
  } finally {
    for (const p of peers) await p.stop()
    for (const d of dirs) await removeDir(d)
  }
}

async function main(): Promise<void> {
  installWireCounter()
  const SRC_HASH = srcHash()
  const cases = [await measure(0), ...(ROWS > 0 ? [await measure(ROWS)] : [])]
  const table = markdownTable([
    ['rows in sync', 'bytes/s (all peers, both directions)', 'bytes/min', 'window'],
    ...cases.map((c) => [fmt(c.rows), fmt(c.bytesPerSecond, 1), fmt(c.bytesPerSecond * 60), `${fmt(c.seconds)} s`]),
  ])
  const targets = cases.map((c) => `${c.bytesPerSecond <= GOAL_BYTES_PER_S ? 'met ' : 'MISSED'} ${fmt(c.rows)} rows: ${c.bytesPerSecond.toFixed(1)} B/s (goal ≤ ${GOAL_BYTES_PER_S} B/s)`)
  console.log(reportText({ title: 'Shoal idle benchmark', quick: PARTIAL, seconds: (performance.now() - t0) / 1000, srcHash: SRC_HASH, sizes: `${PEERS} peers on 127.0.0.1, settle ${SETTLE_S} s, window ${SECONDS} s`, table, targets: targets.join('\n'), notes: [] }))
  if (SAVE) progress(`results: ${(await writeResults('idle', PARTIAL ? 'partial' : 'full', { command: `npm run bench:idle -- ${args.argv.join(' ')}`.trim(), machine: machine(), srcHash: SRC_HASH, peers: PEERS, settleS: SETTLE_S, cases })).join(', ')}`)
}

await main()
