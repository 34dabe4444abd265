import '../src/polyfill.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Shoal } from '../src/index.js'
import { Store } from '../src/store/store.js'
import { LEAF_COUNT } from '../src/table/digest-tree.js'
import { buildLan, setRate, shapedBytes, teardown, type Host } from '../scripts/hosts/netns.js'
import { clientOf, failedRounds, preparePeer, rowCount, startPeer, stopPeer, TABLES, trafficOf, type HostPeer } from '../scripts/hosts/peers.js'
import { parseArgs } from './lib/args.js'
import { mulberry32 } from './lib/prng.js'
import { reportText } from './lib/report.js'
import { machine, srcHash, writeResults } from './lib/results.js'
import { median, quantile } from './lib/stats.js'
import { fmt, markdownTable } from './lib/table.js'

/*
 * The edge-link benchmark (root): three hosts made of Linux network namespaces on one bridge
 * (scripts/hosts/netns.ts), real `shoal start` peers in them. h1 and h2 hold N rows; h3 starts
 * empty behind a rate-limited link (tc tbf both ways) and catches up. Per case:
 *   time      until h3 holds every row, ÷ the ideal (row data ÷ link rate)
 *   bytes     that crossed h3's link (the tbf queues' counters, headers included), ÷ row data
 *   failed    anti-entropy rounds that failed, on any of the three peers
 * and, on the 256 kbit/s link, gossip latency during the load: h1 writes a row
 * every 400 ms into partition 'live', which h3 already holds (a row of its own, written before it
 * starts; the bulk load is of partitions 0–3); the time from the write's answer to the row being
 * readable on h3 (polled through the runner's own path, around the limit).
 * "Row data" is the sum of the stored rows' bytes (their CRDT documents), read from h1's folder.
 *
 *   npm run bench:wan                 5k and 50k rows at 256 kbit/s and 2 Mbit/s (~15 min)
 *   npm run bench:wan -- --quick      5k rows only (~3 min)
 *   npm run bench:wan -- --no-save    do not write bench/results/wan-*.json
 *   npm run bench:wan -- --keep       keep the peers' folders and logs (printed)
 *   npm run bench:wan -- --compare-deflate   every case also with "deflate": false on all peers
 *   npm run bench:wan -- --rows 50000 --rates 256 --deflate-off   some cases only (a partial run)
 */

const args = parseArgs()
const QUICK = args.flag('--quick')
const SAVE = !args.flag('--no-save')
const KEEP = args.flag('--keep')
const listOption = (name: string, fallback: number[]): number[] => {
  const text = args.option(name)
  if (text === undefined) return fallback
  const values = text.split(',').map(Number)
  if (values.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`${name} takes positive integers, comma-separated (got '${text}')`)
  return values
}
const RATES = listOption('--rates', [256, 2000])
/** Deflate on (the default) and, with --compare-deflate, off: side by side in one run. */
const DEFLATE = args.flag('--compare-deflate') ? [true, false] : args.flag('--deflate-off') ? [false] : [true]
const SIZES = listOption('--rows', QUICK ? [5000] : [5000, 50_000])
const PARTIAL = args.option('--rates') !== undefined || args.option('--rows') !== undefined || args.flag('--deflate-off')
const GOSSIP_EVERY_MS = 400
const GOALS = { time: 1.3, bytes: 1.2, failed: 0, gossipP99Ms: 2000 }

const progress = (message: string): void => void process.stderr.write(`[wan ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${message}\n`)
const t0 = performance.now()

async function until(what: string, check: () => Promise<boolean>, deadlineMs: number, everyMs = 100): Promise<number> {
  const started = performance.now()
  for (;;) {
    try {
      if (await check()) return performance.now() - started
    } catch {
      // not answering yet: poll again
    }
    if (performance.now() - started > deadlineMs) throw new Error(`timed out after ${deadlineMs / 1000} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

interface Case {
  deflate: boolean
  kbit: number
  rows: number
  rowDataBytes: number
  seconds: number
  idealSeconds: number
  timeRatio: number
  linkIn: number
  linkOut: number
  bytesRatio: number
  failedRounds: number
  /** Replication payload h3 received (gossip messages + anti-entropy frames as sent: deflated or not). */
  payloadIn: number
  /** Packets that crossed h3's link towards it and from it (the tbf queues' counters). */
  segmentsIn: number
  segmentsOut: number
  gossip: { samples: number; p50Ms: number; p99Ms: number; maxMs: number } | null
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
const code = (random: () => number): string => Array.from({ length: 10 }, () => ALPHANUMERIC[Math.floor(random() * ALPHANUMERIC.length)]).join('')
/** A vocabulary of 800 made-up words, so row text compresses about as prose does, not as a repeated template. */
const WORDS = ((): string[] => {
  const random = mulberry32(7)
  return Array.from({ length: 800 }, () => Array.from({ length: 3 + Math.floor(random() * 7) }, () => 'abcdefghijklmnopqrstuvwxyz'[Math.floor(random() * 26)]).join(''))
})()
const sentence = (random: () => number): string => Array.from({ length: 4 + Math.floor(random() * 6) }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ')

/**
 * Writes `n` rows into a stopped peer's folder directly (fast: batched, as an import would), and
 * one row `live-<tag>` in partition 'live'; returns the bytes of the rows in partitions 0–3.
 */
async function seed(dir: string, n: number, tag: string): Promise<number> {
  const random = mulberry32(n)
  const db = await Shoal.open({ dir })
  try {
    await db.defineTable(TABLES[0]!)
    await db.table('stock').put(`live-${tag}`, { store: 'live', sku: 'LIVE' })
    for (let i = 0; i < n; i += 500) {
      const ops = []
      for (let j = i; j < Math.min(n, i + 500); j++) {
        ops.push({ table: 'stock', op: 'put' as const, key: `r${j}`, values: { store: String(j % 4), sku: code(random), qty: Math.floor(random() * 500), shelf: sentence(random) } })
      }
      await db.applyBatch(ops)
    }
  } finally {
    await db.close()
  }
  const store = await Store.open({ dir })
  try {
    let bytes = 0
    for (const p of store.partitions('stock')) {
      if (p.partition === 'live') continue
      let after = null
      for (;;) {
        const page: Awaited<ReturnType<Store['rowRange']>> = await store.rowRange('stock', p.partition, 0, LEAF_COUNT, after, 1 << 20)
        for (const r of page.rows) bytes += r.doc.length
        if (page.next === null) break
        after = page.next
      }
    }
    return bytes
  } finally {
    await store.close()
  }
}

/**
 * Writes a row on `writer` every GOSSIP_EVERY_MS while `running()`, and times each until `reader`
 * has it. Timing starts once the load has begun and a first row has reached `reader` (it has
 * joined the partition's gossip): what is measured is gossip beside the load, not joining.
 */
async function gossipLatency(writer: HostPeer, reader: HostPeer, running: () => boolean): Promise<number[]> {
  await until('the load to begin', async () => (await bulkRows(reader)) > 0, 600_000, 50)
  await clientOf(writer).put('stock', 'probe', { store: 'live', sku: 'PROBE' }, { partition: 'live' })
  await until(`the probe row on ${reader.host.name}`, async () => {
    await clientOf(reader).get('stock', 'probe', { partition: 'live' })
    return true
  }, 600_000, 20)
  const samples: Array<Promise<number | null>> = []
  for (let i = 0; running(); i++) {
    const key = `g${i}`
    const partition = 'live'
    await clientOf(writer).put('stock', key, { store: partition, sku: `G${i}` }, { partition })
    const written = performance.now()
    samples.push(
      until(`${key} on ${reader.host.name}`, async () => {
        await clientOf(reader).get('stock', key, { partition })
        return true
      }, 120_000, 20).then(() => performance.now() - written, () => null),
    )
    await new Promise((r) => setTimeout(r, GOSSIP_EVERY_MS))
  }
  return (await Promise.all(samples)).filter((s): s is number => s !== null)
}

/** Rows a peer holds in the bulk partitions (0–3). */
async function bulkRows(p: HostPeer): Promise<number> {
  const status = await clientOf(p).status()
  const stock = status.tables.find((t) => t.name === 'stock')
  return (stock?.partitions ?? []).filter((x) => x.partition !== 'live').reduce((n, x) => n + x.rows, 0)
}

async function runCase(kbit: number, rows: number, withGossip: boolean, deflate: boolean): Promise<Case> {
  const hosts: Host[] = buildLan(3)
  const root = await mkdtemp(join(tmpdir(), 'shoal-wan-'))
  const peers: HostPeer[] = []
  try {
    for (const h of hosts) peers.push(await preparePeer(h, root, [], true, { deflate }))
    const [h1, h2, h3] = peers as [HostPeer, HostPeer, HostPeer]
    const label = `${rows} rows at ${kbit} kbit/s, deflate ${deflate ? 'on' : 'off'}`
    progress(`${label}: seeding h1`)
    const rowDataBytes = await seed(h1.dir, rows, 'h1')
    await seed(h3.dir, 0, 'h3')
    await startPeer(h1)
    await startPeer(h2)
    await until('h2 to load every row from h1', async () => (await rowCount(h2)) >= rows + 1, 300_000)
    setRate(h3.host, kbit)
    progress(`${label}: h1 and h2 hold them (${(rowDataBytes / 1024).toFixed(0)} KiB of row data); h3 starts behind the limit`)
    await startPeer(h3)
    const started = performance.now()
    let loading = true
    const gossip = withGossip ? gossipLatency(h1, h3, () => loading) : Promise.resolve([])
    await until(`h3 to hold ${rows} rows`, async () => (await bulkRows(h3)) >= rows, 3_600_000, 200)
    const seconds = (performance.now() - started) / 1000
    loading = false
    const latencies = await gossip
    const link = shapedBytes(h3.host)
    const payloadIn = (await trafficOf(h3)).bytes_in ?? NaN
    const failed = (await Promise.all(peers.map(failedRounds))).reduce((a, b) => a + b, 0)
    const idealSeconds = (rowDataBytes * 8) / (kbit * 1000)
    const sorted = [...latencies].sort((a, b) => a - b)
    const result: Case = {
      deflate,
      kbit,
      rows,
      rowDataBytes,
      seconds,
      idealSeconds,
      timeRatio: seconds / idealSeconds,
      linkIn: link.in,
      linkOut: link.out,
      bytesRatio: (link.in + link.out) / rowDataBytes,
      failedRounds: failed,
      payloadIn,
      segmentsIn: link.packetsIn,
      segmentsOut: link.packetsOut,
      gossip: withGossip ? { samples: sorted.length, p50Ms: median(sorted), p99Ms: quantile(sorted, 0.99), maxMs: sorted[sorted.length - 1] ?? NaN } : null,
    }
    progress(`${label}: ${seconds.toFixed(1)} s (ideal ${idealSeconds.toFixed(1)} s), ${((link.in + link.out) / 1024).toFixed(0)} KiB over the link, ${failed} failed rounds${result.gossip === null ? '' : `, gossip p50 ${result.gossip.p50Ms.toFixed(0)} ms p99 ${result.gossip.p99Ms.toFixed(0)} ms`}`)
    return result
  } finally {
    await Promise.allSettled(peers.map((p) => stopPeer(p, 'SIGKILL')))
    teardown()
    if (KEEP) progress(`peers' folders and logs kept in ${root}`)
    else await rm(root, { recursive: true, force: true })
  }
}

function table(cases: readonly Case[]): string {
  const rows = [['link', 'deflate', 'rows', 'row data', 'time', 'ideal', 'time ÷ ideal', 'link bytes (in + out)', 'bytes ÷ row data', 'payload in', 'packets in / out', 'failed rounds', 'gossip p50 / p99']]
  for (const c of cases) {
    rows.push([
      c.kbit >= 1000 ? `${c.kbit / 1000} Mbit/s` : `${c.kbit} kbit/s`,
      c.deflate ? 'on' : 'off',
      fmt(c.rows),
      `${fmt(c.rowDataBytes / 1024)} KiB`,
      `${fmt(c.seconds, 1)} s`,
      `${fmt(c.idealSeconds, 1)} s`,
      `${fmt(c.timeRatio, 2)}×`,
      `${fmt((c.linkIn + c.linkOut) / 1024)} KiB (${fmt(c.linkIn / 1024)} + ${fmt(c.linkOut / 1024)})`,
      `${fmt(c.bytesRatio, 2)}×`,
      `${fmt(c.payloadIn / 1024)} KiB`,
      `${fmt(c.segmentsIn)} / ${fmt(c.segmentsOut)}`,
      fmt(c.failedRounds),
      c.gossip === null ? '—' : `${fmt(c.gossip.p50Ms)} / ${fmt(c.gossip.p99Ms)} ms (${c.gossip.samples} writes)`,
    ])
  }
  return markdownTable(rows)
}

function verdicts(cases: readonly Case[]): string[] {
  const out: string[] = []
  for (const c of cases) {
    if (!c.deflate) continue
    const name = `${c.rows} rows at ${c.kbit} kbit/s`
    out.push(`${c.timeRatio <= GOALS.time ? 'met ' : 'MISSED'} ${name}: time ÷ ideal ${c.timeRatio.toFixed(2)} (goal ≤ ${GOALS.time})`)
    out.push(`${c.bytesRatio <= GOALS.bytes ? 'met ' : 'MISSED'} ${name}: bytes ÷ row data ${c.bytesRatio.toFixed(2)} (goal ≤ ${GOALS.bytes})`)
    out.push(`${c.failedRounds <= GOALS.failed ? 'met ' : 'MISSED'} ${name}: failed rounds ${c.failedRounds} (goal ${GOALS.failed})`)
    if (c.gossip !== null) out.push(`${c.gossip.p99Ms <= GOALS.gossipP99Ms ? 'met ' : 'MISSED'} ${name}: gossip p99 during the load ${c.gossip.p99Ms.toFixed(0)} ms (goal ≤ ${GOALS.gossipP99Ms} ms)`)
  }
  return out
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('npm run bench:wan needs root: it creates network namespaces, a bridge and tc queues')
    process.exit(2)
  }
  const SRC_HASH = srcHash()
  const cases: Case[] = []
  for (const rows of SIZES) for (const kbit of RATES) for (const deflate of DEFLATE) cases.push(await runCase(kbit, rows, kbit === 256, deflate))
  const text = table(cases)
  const judged = verdicts(cases)
  console.log(
    reportText({
      title: 'Shoal edge-link benchmark',
      quick: QUICK,
      seconds: (performance.now() - t0) / 1000,
      srcHash: SRC_HASH,
      sizes: `${SIZES.join(' and ')} rows; links ${RATES.map((k) => (k >= 1000 ? `${k / 1000} Mbit/s` : `${k} kbit/s`)).join(' and ')} (tc tbf both ways); 3 hosts`,
      table: text,
      targets: judged.join('\n'),
      notes: [],
    }),
  )
  if (SAVE) {
    const files = await writeResults('wan', PARTIAL ? 'partial' : QUICK ? 'quick' : 'full', { command: `npm run bench:wan -- ${args.argv.join(' ')}`.trim(), machine: machine(), srcHash: SRC_HASH, goals: GOALS, cases })
    progress(`results: ${files.join(', ')}`)
  }
}

process.once('SIGINT', () => {
  teardown()
  process.exit(130)
})
await main()
