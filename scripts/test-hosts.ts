import '../src/polyfill.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildLan, ensureNft, setCut, setLoss, setRate, shapedBytes, tcpSegments, teardown, type Host } from './hosts/netns.js'
import { clientOf, messageBytesOf, preparePeer, rowCount, startPeer, stopPeer, trafficOf, type HostPeer } from './hosts/peers.js'

/*
 * `npm run test:hosts` (root): five hosts made of Linux network namespaces on one bridge
 * (scripts/hosts/netns.ts), a real `shoal start` in each, and what an operator would try on a
 * site LAN: joining, 20 % packet loss, a partition and its heal, kill -9 and restart, and a peer
 * catching up over a 256 kbit/s link. Each check waits by polling against a deadline; none
 * asserts a speed (the slow link's figures are printed, the benchmark judges them). Everything is
 * removed on exit, also after a failure or Ctrl-C. Exits 1 on the first failed check.
 */

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '5' }, 'slow-rows': { type: 'string', default: '2000' }, keep: { type: 'boolean', default: false } } })
const COUNT = Number(values.hosts)
const SLOW_ROWS = Number(values['slow-rows'])
if (!Number.isInteger(COUNT) || COUNT < 3 || COUNT > 9) throw new Error('--hosts must be 3…9')
if (!Number.isInteger(SLOW_ROWS) || SLOW_ROWS < 1) throw new Error('--slow-rows must be a positive integer')
if (process.getuid?.() !== 0) {
  console.error('npm run test:hosts needs root: it creates network namespaces, a bridge, nft rules and tc queues')
  process.exit(2)
}

const log = (message: string): void => console.log(`[hosts ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}`)
const t0 = performance.now()

async function until(what: string, check: () => Promise<boolean>, deadlineMs: number): Promise<number> {
  const started = performance.now()
  let last: unknown = null
  for (;;) {
    try {
      if (await check()) return performance.now() - started
    } catch (error) {
      last = error
    }
    if (performance.now() - started > deadlineMs) throw new Error(`timed out after ${deadlineMs / 1000} s waiting for ${what}${last === null ? '' : ` (last error: ${(last as Error).message})`}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Runs `n` writes, `width` at a time (the API serves a bounded number of connections). */
async function writeMany(n: number, width: number, write: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await write(next++)
    }),
  )
}

async function has(p: HostPeer, key: string, store: string): Promise<boolean> {
  try {
    await clientOf(p).get('stock', key, { partition: store })
    return true
  } catch {
    return false
  }
}

async function everyoneHas(peers: readonly HostPeer[], key: string, store: string): Promise<boolean> {
  for (const p of peers) if (!(await has(p, key, store))) return false
  return true
}

let root = ''
let peers: HostPeer[] = []
let hosts: Host[] = []

async function cleanup(): Promise<void> {
  await Promise.allSettled(peers.map((p) => stopPeer(p, 'SIGKILL')))
  teardown()
  if (root !== '' && !values.keep) await rm(root, { recursive: true, force: true })
}

process.once('SIGINT', () => void cleanup().then(() => process.exit(130)))
process.once('SIGTERM', () => void cleanup().then(() => process.exit(143)))

async function main(): Promise<void> {
  ensureNft()
  hosts = buildLan(COUNT)
  root = await mkdtemp(join(tmpdir(), 'shoal-hosts-'))
  log(`LAN of ${COUNT} hosts (${hosts.map((h) => `${h.name} ${h.address}`).join(', ')}); logs in ${root}`)

  // 1. Joining by mDNS alone (no bootstrap), on hosts without a default route.
  peers = []
  for (const h of hosts) peers.push(await preparePeer(h, root, [], true))
  const first = peers[0]!
  await Promise.all(peers.map(startPeer))
  const last = peers[peers.length - 1]!
  await clientOf(last).put('stock', 'join', { store: '1', sku: 'J' }, { partition: '1' })
  log(`join (mDNS): a row written on ${last.host.name} is on every host after ${((await until('every host to hold it', () => everyoneHas(peers, 'join', '1'), 60_000)) / 1000).toFixed(1)} s`)

  // 2. 20 % of the packets every host receives dropped at random.
  for (const h of hosts) setLoss(h, 20)
  const writer = peers[1]!
  await writeMany(100, 8, (i) => clientOf(writer).put('stock', `loss${i}`, { store: String(i % 4), sku: `L${i}` }, { partition: String(i % 4) }))
  const lossMs = await until('100 rows on every host', async () => (await Promise.all(peers.map(rowCount))).every((n) => n >= 101), 120_000)
  for (const h of hosts) setLoss(h, 0)
  log(`loss: 100 rows written on ${writer.host.name} under 20 % loss reach every host in ${(lossMs / 1000).toFixed(1)} s`)

  // 3. A partition: the last host cut off, both sides write, the link comes back.
  setCut(last.host, true)
  await clientOf(last).put('stock', 'cut-side', { store: '2', sku: 'C' }, { partition: '2' })
  await clientOf(first).put('stock', 'main-side', { store: '2', sku: 'M' }, { partition: '2' })
  await until('the main side to share its row', () => everyoneHas(peers.slice(0, -1), 'main-side', '2'), 60_000)
  if (await has(last, 'main-side', '2')) throw new Error('partition: the cut-off host received a row across the cut')
  setCut(last.host, false)
  const healMs = await until('both rows on every host', async () => (await everyoneHas(peers, 'main-side', '2')) && (await everyoneHas(peers, 'cut-side', '2')), 120_000)
  log(`partition: both sides' rows are on every host ${(healMs / 1000).toFixed(1)} s after the cut was healed`)

  // 4. kill -9 in the middle of writes, restart: every acknowledged write is there, everywhere.
  const victim = peers[2]!
  const acked: string[] = []
  const writes = (async () => {
    for (let i = 0; ; i++) {
      try {
        await clientOf(victim).put('stock', `crash${i}`, { store: '3', sku: `K${i}` }, { partition: '3' })
        acked.push(`crash${i}`)
      } catch {
        return
      }
    }
  })()
  await until('some acknowledged writes', async () => acked.length >= 30, 60_000)
  await stopPeer(victim, 'SIGKILL')
  await writes
  await startPeer(victim)
  const crashMs = await until(`${acked.length} acknowledged writes on every host`, async () => {
    for (const p of peers) for (const key of [acked[0]!, acked[acked.length - 1]!]) if (!(await has(p, key, '3'))) return false
    return (await Promise.all(peers.map(rowCount))).every((n) => n >= 103 + acked.length)
  }, 120_000)
  log(`crash: ${victim.host.name} killed after ${acked.length} acknowledged writes, restarted; all of them on every host ${(crashMs / 1000).toFixed(1)} s after the restart`)

  // 5. A peer catching up over a 256 kbit/s link (figures only: bench:wan judges them).
  const slow = peers[3]!
  await stopPeer(slow)
  await writeMany(SLOW_ROWS, 16, (i) => clientOf(first).put('stock', `slow${i}`, { store: String(i % 4), sku: `S${i}`, shelf: `shelf ${i} of the slow-link test` }, { partition: String(i % 4) }))
  const target = await rowCount(first)
  setRate(slow.host, 256)
  await startPeer(slow)
  const slowMs = await until(`${slow.host.name} to hold ${target} rows over 256 kbit/s`, async () => (await rowCount(slow)) >= target, 600_000)
  const link = shapedBytes(slow.host)
  const segments = tcpSegments(slow.host)
  const status = await clientOf(slow).status()
  setRate(slow.host, null)
  for (const s of status.sync.peers) {
    const r = s.lastRound
    if (r !== null) log(`  ${slow.host.name}'s last round with ${s.peer.slice(-6)}: ${r.ok ? 'ok' : `failed (${r.error})`}, ${r.rowsReceived} rows in, ${r.rowsSent} out, ${(r.bytesIn / 1024).toFixed(0)} KiB in, ${(r.bytesOut / 1024).toFixed(0)} KiB out, ${(r.durationMs / 1000).toFixed(1)} s`)
  }
  log(`  ${slow.host.name}'s counters: ${JSON.stringify(await trafficOf(slow))}; TCP segments since its namespace began: ${JSON.stringify(segments)}`)
  log(`  ${slow.host.name}'s anti-entropy bytes by message: ${JSON.stringify(await messageBytesOf(slow))}; packets over its link: ${link.packetsIn} in, ${link.packetsOut} out`)
  log(`slow link: ${slow.host.name} caught up ${SLOW_ROWS} new rows (${target} in all) over 256 kbit/s in ${(slowMs / 1000).toFixed(1)} s; its link carried ${(link.in / 1024).toFixed(0)} KiB in, ${(link.out / 1024).toFixed(0)} KiB out`)
}

try {
  await main()
  log('all checks passed')
} catch (error) {
  console.error(`\nFAILED: ${(error as Error).message}${root === '' ? '' : `\npeer logs: ${root} (kept)`}`)
  values.keep = true
  process.exitCode = 1
} finally {
  await cleanup()
}
