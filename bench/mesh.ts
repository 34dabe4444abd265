/*
 * Shoal mesh benchmark: real peers (libp2p over TCP on 127.0.0.1, LevelDB in temp folders), all in
 * this one process, as `shoal start` runs them (store + libp2p node + gossip + anti-entropy).
 *
 *   npm run bench:mesh                     full run (~3.5–4.5 min on 2 cores)
 *   npm run bench:mesh -- --quick          smoke run (small N, fewer samples, ~1.5 min)
 *   npm run bench:mesh -- --only ae        only some phases (comma list: latency,throughput,ae)
 *   npm run bench:mesh -- --engines yjs    only some engines
 *   npm run bench:mesh -- --no-save        do not write bench/results/mesh-*.json
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
 */
import { callbackLogger } from '../src/log.js'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Socket } from 'node:net'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuMark, foreignCores, ownCores, profiled, sourceHash } from './common.js'
import { parseConfig, type PeerConfig } from '../src/config.js'
import { Shoal, type ChangeEvent, type EngineName, type Table, type TableSchema } from '../src/index.js'
import { Peer } from '../src/peer/peer.js'
import { topicFor } from '../src/sync/gossip.js'
import { answer, reconcile, type Ask, type RoundStats } from '../src/sync/reconciler.js'
import { StoreReplica } from '../src/sync/store-replica.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type SyncRequest, type SyncResponse } from '../src/sync/sync-messages.js'

// ---- configuration ---------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(name)
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

const QUICK = flag('--quick')
const SAVE = !flag('--no-save')
const ENGINES = (option('--engines') ?? 'yjs,automerge').split(',') as EngineName[]
const ALL_PHASES = 'latency,throughput,ae'
const PHASES = new Set((option('--only') ?? ALL_PHASES).split(','))
const PROF_DIR = option('--cpu-prof-dir')
/** A complete run (every phase, both engines, full sizes) also updates mesh-latest.json. */
const COMPLETE = !QUICK && option('--only') === undefined && option('--engines') === undefined

/** Partition values: `store` = i % PARTITIONS. */
const PARTITIONS = 8
/** Concurrent puts per chunk when building a data set (= MAX_WRITES_PER_BATCH: one chunk ≈ one LevelDB batch). */
const LOAD_CHUNK = 4096
/** Gap between the starts of two latency samples (each also waits for both arrivals). */
const PACE_MS = 20
/** Rows differing in the anti-entropy rounds. */
const DIFF_ROWS = 1000

interface Sizes {
  /** Latency samples per engine, and the rows they update. */
  latencySamples: number
  latencyRows: number
  /** Single-column changes A issues per throughput run, over `throughputRows` rows, in chunks of `throughputChunk`. */
  throughputChanges: Record<EngineName, number>
  throughputRows: number
  throughputChunk: number
  /** Receiver counts of the throughput runs. */
  receivers: number[]
  /** Rows A holds in the anti-entropy phase (Automerge: fewer, its rows load ~8× slower). */
  aeRows: Record<EngineName, number>
  /** Repetitions of the in-sync round. */
  inSyncRounds: number
  /** Window over which the idle mesh's background TCP bytes are measured (subtracted from the byte counts). */
  idleMs: number
}

const SIZES: Sizes = QUICK
  ? {
      latencySamples: 100,
      latencyRows: 100,
      throughputChanges: { yjs: 3_000, automerge: 1_000 },
      throughputRows: 500,
      throughputChunk: 1_000,
      receivers: [2, 5],
      aeRows: { yjs: 10_000, automerge: 6_000 },
      inSyncRounds: 3,
      idleMs: 1_000,
    }
  : {
      latencySamples: 500,
      latencyRows: 200,
      throughputChanges: { yjs: 20_000, automerge: 4_000 },
      throughputRows: 1_000,
      throughputChunk: 1_000,
      receivers: [2, 5],
      aeRows: { yjs: 100_000, automerge: 10_000 },
      inSyncRounds: 5,
      idleMs: 3_000,
    }

// ---- helpers (small ones copied from bench/run.ts) -----------------------------------------------

const THIS_FILE = fileURLToPath(import.meta.url)
const started = performance.now()

function progress(message: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[mesh ${t}s] ${message}\n`)
}

const tableOf = (engine: EngineName): string => `stock_${engine}`

function stockSchema(engine: EngineName): TableSchema {
  return {
    name: tableOf(engine),
    primaryKey: 'id',
    partitionBy: 'store',
    engine,
    columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' },
  }
}

const idOf = (prefix: string, i: number): string => `${prefix}${String(i).padStart(7, '0')}`
const storeOf = (i: number): string => String(i % PARTITIONS)
const rowOf = (i: number): Record<string, unknown> => ({ store: storeOf(i), sku: `sku-${i % 5000}`, qty: 1 + (i % 50), shelf: `A${i % 40}` })

async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-mesh-${label}-`))
}

async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function median(values: number[]): number {
  return quantile(values, 0.5)
}

/** Nearest-rank quantile (p99 of 500 samples = the 495th smallest). */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  if (q === 0.5 && sorted.length % 2 === 0) return (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

function rate(ops: number, ms: number): number {
  return ops / (ms / 1000)
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) {
    g()
    g()
  }
}

/** Puts rows [from, from + n) in concurrent chunks of LOAD_CHUNK (group commit). */
async function loadRows(t: Table, prefix: string, from: number, n: number, onChunk?: (done: number) => void): Promise<void> {
  for (let start = from; start < from + n; start += LOAD_CHUNK) {
    const end = Math.min(from + n, start + LOAD_CHUNK)
    const puts: Array<Promise<unknown>> = []
    for (let i = start; i < end; i++) puts.push(t.put(idOf(prefix, i), rowOf(i)))
    await Promise.all(puts)
    onChunk?.(end - from)
  }
}

async function eventually(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 60_000, everyMs = 20): Promise<void> {
  const until = performance.now() + deadlineMs
  while (!(await check())) {
    if (performance.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for: ${what}`)
    await sleep(everyMs)
  }
}


// ---- bytes on the wire -----------------------------------------------------------------------------

/*
 * Every TCP byte libp2p writes (noise, yamux, multistream, gossipsub RPC envelopes and signatures,
 * identify, discovery, pings) goes through net.Socket#write (@libp2p/tcp sendData). Counted per
 * local port, so a socket can be attributed to the peer that owns it.
 */
const wire = new Map<number, number>()

function installWireCounter(): void {
  const proto = Socket.prototype as unknown as { write: (this: Socket, ...args: unknown[]) => boolean }
  const original = proto.write
  proto.write = function (this: Socket, ...args: unknown[]): boolean {
    const chunk = args[0]
    const n = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk instanceof Uint8Array ? chunk.byteLength : 0
    const port = this.localPort
    if (port !== undefined) wire.set(port, (wire.get(port) ?? 0) + n)
    return original.apply(this, args)
  }
}

function portOf(address: string): number {
  const match = /\/tcp\/(\d+)/.exec(address)
  return match === null ? -1 : Number(match[1])
}

/** Local ports of the sockets a peer owns: its listener's (inbound) and, seen from the other side, its outbound ones. */
function portsOf(r: Running, all: Running[]): Set<number> {
  const ports = new Set([r.port])
  for (const other of all) {
    if (other === r) continue
    for (const c of other.peer.node.libp2p.getConnections(r.peer.node.peerId)) {
      if (c.direction === 'inbound') ports.add(portOf(c.remoteAddr.toString()))
    }
  }
  return ports
}

type WireMark = Map<number, number>
const wireMark = (): WireMark => new Map(wire)

function wireSince(mark: WireMark, ports?: Set<number>): number {
  let total = 0
  for (const [port, bytes] of wire) if (ports === undefined || ports.has(port)) total += bytes - (mark.get(port) ?? 0)
  return total
}

/** Background TCP bytes/s (gossipsub heartbeats, discovery announcements, pings) of an idle mesh: of one peer, and of all. */
async function idleWireRate(peers: Running[], writer: Running, ms: number): Promise<{ writer: number; all: number }> {
  const mark = wireMark()
  await sleep(ms)
  return { writer: wireSince(mark, portsOf(writer, peers)) / (ms / 1000), all: wireSince(mark) / (ms / 1000) }
}

// ---- peers -----------------------------------------------------------------------------------

interface Running {
  name: string
  peer: Peer
  dir: string
  port: number
  logs: string[]
}

const allLogs: string[] = []

async function startPeer(name: string, options: { tables: TableSchema[]; dir?: string; bootstrap?: string[]; connectDelayMs?: number }): Promise<Running> {
  const dir = options.dir ?? (await tempDir(name))
  const config: PeerConfig = {
    ...parseConfig({ name, tables: options.tables, open: true }, `bench:${name}`),
    data: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: options.bootstrap ?? [],
    mdns: false,
    http: null,
  }
  const logs: string[] = []
  const peer = await Peer.start(config, {
    logger: callbackLogger((_level, m) => {
      logs.push(m)
      allLogs.push(`${name}: ${m}`)
    }),
    net: { discoveryIntervalMs: 1_000, redial: { minDelayMs: 200, maxDelayMs: 1_000 } },
    // No periodic rounds: anti-entropy runs only on connect / partition announcements / syncWith.
    sync: { intervalMs: 0, connectDelayMs: options.connectDelayMs ?? 100 },
  })
  return { name, peer, dir, port: portOf(peer.node.multiaddrs()[0]!.toString()), logs }
}

const addr = (r: Running): string => r.peer.node.multiaddrs()[0]!.toString()

async function stopAll(peers: Running[]): Promise<void> {
  for (const r of peers) await r.peer.stop()
  for (const r of peers) await removeDir(r.dir)
}

/** Starts A, then `others` peers bootstrapping to A, and waits until every peer is connected to every other. */
async function startMesh(others: number, tables: TableSchema[]): Promise<Running[]> {
  const a = await startPeer('A', { tables })
  const peers = [a]
  for (let i = 0; i < others; i++) peers.push(await startPeer(String.fromCharCode(66 + i), { tables, bootstrap: [addr(a)] }))
  await eventually('a full mesh of connections', () => peers.every((p) => p.peer.node.connectedPeers().length >= peers.length - 1), 60_000, 50)
  return peers
}

function dataTopics(engine: EngineName): string[] {
  return Array.from({ length: PARTITIONS }, (_, p) => topicFor(tableOf(engine), String(p)))
}

/**
 * Waits until every peer's gossipsub mesh on the topics holds all the other peers, or at least
 * D_lo = 4 of them (gossipsub grafts more only below D_lo). A's publishes reach every subscriber
 * anyway (floodPublish); the mesh matters for forwarding.
 */
async function waitGossipMesh(peers: Running[], topics: string[]): Promise<boolean> {
  try {
    // getMeshPeers is on the GossipSub class, not on its exported interface.
    const mesh = (p: Running, topic: string): number => (p.peer.node.pubsub as unknown as { getMeshPeers(topic: string): string[] }).getMeshPeers(topic).length
    const want = Math.min(peers.length - 1, 4)
    await eventually('gossipsub meshes formed', () => peers.every((p) => topics.every((t) => mesh(p, t) >= want)), 30_000, 50)
    return true
  } catch {
    progress('  warning: gossipsub meshes not complete after 30 s; going on (floodPublish reaches every subscriber)')
    return false
  }
}

/** Waits until no anti-entropy round has run on any peer for `calmMs` (rounds scheduled on connect start within 100 ms). */
async function quiesce(peers: Running[], calmMs = 500): Promise<void> {
  let calmSince = performance.now()
  const deadline = calmSince + 120_000
  const rounds = () => peers.reduce((sum, p) => sum + p.peer.sync.counters.rounds, 0)
  let last = rounds()
  while (performance.now() - calmSince < calmMs) {
    if (performance.now() > deadline) throw new Error('anti-entropy did not go quiet within 120 s')
    const busy = peers.some((p) => p.peer.sync.status().peers.some((x) => x.state === 'syncing'))
    const now = rounds()
    if (busy || now !== last) calmSince = performance.now()
    last = now
    await sleep(25)
  }
}

function rootsOf(r: Running, table: string): string {
  return r.peer.db.replication()
    .partitions(table)
    .map((p) => `${p.partition}:${p.rows}:${Buffer.from(p.digest).toString('hex')}`)
    .join(',')
}

/** One anti-entropy round from `from` with `to`, retried while a round between them is already running. */
async function roundWith(from: Running, to: Running, peers: Running[]): Promise<{ stats: RoundStats; ms: number; bytes: number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await quiesce(peers, 300)
    const before = from.peer.sync.counters.bytesIn + from.peer.sync.counters.bytesOut
    const t0 = performance.now()
    const stats = await from.peer.sync.syncWith(to.peer.node.peerId)
    const ms = performance.now() - t0
    if (stats === null) continue
    return { stats, ms, bytes: from.peer.sync.counters.bytesIn + from.peer.sync.counters.bytesOut - before }
  }
  throw new Error(`syncWith(${to.name}) from ${from.name} kept finding a round running`)
}

// ---- phases ----------------------------------------------------------------------------------

type Metrics = Record<string, number | string | boolean | null | number[]>

/** 1 + 3a. Paced single updates on A; arrival times on B and C; bytes of an uncoalesced change. */
async function benchLatency(results: Partial<Record<EngineName, Metrics>>): Promise<void> {
  progress(`latency: starting 3 peers (A, B, C), full mesh`)
  const peers = await startMesh(2, ENGINES.map(stockSchema))
  const [a, b, c] = peers as [Running, Running, Running]
  try {
    for (const engine of ENGINES) {
      const m = results[engine]!
      const name = tableOf(engine)
      const t = a.peer.db.table(name)
      const rows = SIZES.latencyRows
      progress(`${engine}: latency: A puts ${rows} rows; waiting for B and C to hold them and for the gossipsub meshes`)
      await loadRows(t, 'lat', 0, rows)
      await eventually('B and C hold the rows', () => b.peer.db.replication().rowCount(name) === rows && c.peer.db.replication().rowCount(name) === rows)
      m.latency_gossip_mesh_complete = await waitGossipMesh(peers, dataTopics(engine))
      await quiesce(peers)
      const idle = await idleWireRate(peers, a, SIZES.idleMs)

      interface Sample {
        key: string
        shelf: string
        topic: string
        t0: number
        /** Committed on A (its ChangeEvent), the gossip message at B's gossipsub, applied on B / C (their ChangeEvents). */
        a: number | null
        bMessage: number | null
        b: number | null
        c: number | null
        done: () => void
      }
      let current: Sample | null = null
      const watch = (r: Running, side: 'b' | 'c') =>
        r.peer.db.subscribe((e: ChangeEvent) => {
          const cur = current
          if (cur === null || e.table !== name || e.key !== cur.key || e.origin === 'local' || e.row?.shelf !== cur.shelf || cur[side] !== null) return
          cur[side] = performance.now() - cur.t0
          if (cur.b !== null && cur.c !== null) cur.done()
        })
      const deltas: number[] = []
      const onMessage = (event: CustomEvent<{ topic: string }>): void => {
        if (current !== null && current.bMessage === null && event.detail.topic === current.topic) current.bMessage = performance.now() - current.t0
      }
      b.peer.node.pubsub.addEventListener('message', onMessage)
      const unsubscribe = [
        watch(b, 'b'),
        watch(c, 'c'),
        a.peer.db.subscribe((e) => {
          if (e.table !== name || e.origin !== 'local') return
          deltas.push(e.delta.length)
          if (current !== null && e.key === current.key && current.a === null) current.a = performance.now() - current.t0
        }),
        () => b.peer.node.pubsub.removeEventListener('message', onMessage),
      ]
      const g0 = { ...a.peer.gossip.counters }
      const repaired0 = b.peer.sync.counters.rowsRepaired + c.peer.sync.counters.rowsRepaired
      const mark = wireMark()
      const latB: number[] = []
      const latC: number[] = []
      const commitA: number[] = []
      const messageB: number[] = []
      const local: number[] = []
      let lost = 0
      progress(`${engine}: latency: ${SIZES.latencySamples} single updates of { shelf } on A, one every ≥ ${PACE_MS} ms, each awaited on B and C`)
      const phaseStart = performance.now()
      for (let i = 0; i < SIZES.latencySamples; i++) {
        const row = (i * 7) % rows
        const key = idOf('lat', row)
        const shelf = `L${i}`
        let timer: ReturnType<typeof setTimeout> | undefined
        const cur: Sample = { key, shelf, topic: topicFor(name, storeOf(row)), t0: 0, a: null, bMessage: null, b: null, c: null, done: () => {} }
        const arrived = new Promise<boolean>((ok) => {
          cur.done = () => ok(true)
          timer = setTimeout(() => ok(false), 10_000)
        })
        current = cur
        cur.t0 = performance.now()
        await t.update(key, { shelf })
        local.push(performance.now() - cur.t0)
        const ok = await arrived
        clearTimeout(timer)
        if (ok) {
          latB.push(cur.b!)
          latC.push(cur.c!)
          if (cur.a !== null) commitA.push(cur.a)
          if (cur.bMessage !== null) messageB.push(cur.bMessage)
        } else {
          lost++
        }
        current = null
        const wait = PACE_MS - (performance.now() - cur.t0)
        if (wait > 0) await sleep(wait)
      }
      const phaseSeconds = (performance.now() - phaseStart) / 1000
      for (const u of unsubscribe) u()
      const g = a.peer.gossip.counters
      const changes = g.deltasOut - g0.deltasOut
      const writerWire = wireSince(mark, portsOf(a, peers)) - idle.writer * phaseSeconds
      const meshWire = wireSince(mark) - idle.all * phaseSeconds
      Object.assign(m, {
        latency_samples: SIZES.latencySamples,
        latency_lost: lost,
        latency_b_p50_ms: quantile(latB, 0.5),
        latency_b_p99_ms: quantile(latB, 0.99),
        latency_b_max_ms: Math.max(...latB),
        latency_c_p50_ms: quantile(latC, 0.5),
        latency_c_p99_ms: quantile(latC, 0.99),
        latency_c_max_ms: Math.max(...latC),
        latency_local_update_p50_ms: quantile(local, 0.5),
        latency_a_commit_p50_ms: quantile(commitA, 0.5),
        latency_b_message_p50_ms: quantile(messageB, 0.5),
        latency_b_message_p99_ms: quantile(messageB, 0.99),
        latency_local_update_p99_ms: quantile(local, 0.99),
        latency_repaired_by_anti_entropy: b.peer.sync.counters.rowsRepaired + c.peer.sync.counters.rowsRepaired - repaired0,
        paced_changes: changes,
        paced_messages: g.messagesOut - g0.messagesOut,
        paced_deltas_per_message: changes / (g.messagesOut - g0.messagesOut),
        paced_delta_bytes: median(deltas),
        paced_gossip_bytes_per_change: (g.bytesOut - g0.bytesOut) / changes,
        paced_wire_writer_bytes_per_change: writerWire / changes,
        paced_wire_mesh_bytes_per_change: meshWire / changes,
        idle_wire_writer_bytes_per_s: idle.writer,
        idle_wire_mesh_bytes_per_s: idle.all,
      })
      progress(
        `${engine}: latency: B p50 ${fmt(m.latency_b_p50_ms, 1)} / p99 ${fmt(m.latency_b_p99_ms, 1)} ms, C p50 ${fmt(m.latency_c_p50_ms, 1)} / p99 ${fmt(m.latency_c_p99_ms, 1)} ms, ${lost} lost; ` +
          `${fmt(m.paced_gossip_bytes_per_change)} B gossip payload / ${fmt(m.paced_wire_writer_bytes_per_change)} B on A's sockets per change`,
      )
    }
  } finally {
    await stopAll(peers)
  }
}

/** 2 + 3b. A issues N single-column changes in concurrent chunks; time until every receiver's roots equal A's. */
async function benchThroughput(results: Partial<Record<EngineName, Metrics>>): Promise<void> {
  for (const receivers of SIZES.receivers) {
    progress(`throughput: starting A + ${receivers} peers, full mesh`)
    const peers = await startMesh(receivers, ENGINES.map(stockSchema))
    const a = peers[0]!
    const others = peers.slice(1)
    try {
      for (const engine of ENGINES) {
        const m = results[engine]!
        const name = tableOf(engine)
        const t = a.peer.db.table(name)
        const rows = SIZES.throughputRows
        const n = SIZES.throughputChanges[engine]
        const chunk = SIZES.throughputChunk
        progress(`${engine}: throughput to ${receivers}: A puts ${rows} rows; waiting for every peer to hold them and for the gossipsub meshes`)
        await loadRows(t, 'tp', 0, rows)
        await eventually('every peer holds the rows', () => others.every((p) => p.peer.db.replication().rowCount(name) === rows), 120_000)
        const meshed = await waitGossipMesh(peers, dataTopics(engine))
        await quiesce(peers)
        const idle = await idleWireRate(peers, a, SIZES.idleMs)

        const applied = others.map(() => 0)
        const unsubscribe = others.map((p, i) =>
          p.peer.db.subscribe((e) => {
            if (e.table === name && e.origin !== 'local') applied[i]!++
          }),
        )
        const g0 = { ...a.peer.gossip.counters }
        const r0 = others.map((p) => ({ ...p.peer.gossip.counters }))
        const repaired0 = others.reduce((sum, p) => sum + p.peer.sync.counters.rowsRepaired, 0)
        const mark = wireMark()
        const cpu = cpuMark()
        progress(`${engine}: throughput to ${receivers}: A issues ${n} single-column changes (increment qty / update shelf, alternating) over ${rows} rows in concurrent chunks of ${chunk}`)
        const t0 = performance.now()
        const done: number[] = others.map(() => NaN)
        await profiled(PROF_DIR, `throughput-${engine}-to-${receivers}`, async () => {
          for (let start = 0; start < n; start += chunk) {
            const ops: Array<Promise<unknown>> = []
            for (let i = start; i < Math.min(n, start + chunk); i++) {
              const key = idOf('tp', i % rows)
              ops.push(i % 2 === 0 ? t.increment(key, 'qty', 1) : t.update(key, { shelf: `S${i}` }))
            }
            await Promise.all(ops)
          }
          const localMs = performance.now() - t0
          m[`tp${receivers}_local_changes_per_s`] = rate(n, localMs)
          const target = rootsOf(a, name)
          let nextReport = performance.now() + 5_000
          await eventually(
            `every peer converged with A`,
            () => {
              const now = performance.now()
              others.forEach((p, i) => {
                if (Number.isNaN(done[i]!) && rootsOf(p, name) === target) done[i] = now - t0
              })
              if (now > nextReport) {
                nextReport = now + 5_000
                progress(`  ${((now - t0) / 1000).toFixed(0)} s: remote changes applied per peer: ${applied.join(', ')} of ${n}`)
              }
              return done.every((d) => !Number.isNaN(d))
            },
            600_000,
            10,
          )
        }, progress)
        const totalMs = Math.max(...done)
        const seconds = totalMs / 1000
        for (const u of unsubscribe) u()
        const g = a.peer.gossip.counters
        const changes = g.deltasOut - g0.deltasOut
        const messages = g.messagesOut - g0.messagesOut
        Object.assign(m, {
          [`tp${receivers}_changes`]: n,
          [`tp${receivers}_changes_per_s`]: rate(n, totalMs),
          [`tp${receivers}_seconds`]: seconds,
          [`tp${receivers}_first_peer_seconds`]: Math.min(...done) / 1000,
          [`tp${receivers}_remote_events_min`]: Math.min(...applied),
          [`tp${receivers}_gossip_deltas_in_min`]: Math.min(...others.map((p, i) => p.peer.gossip.counters.deltasIn - r0[i]!.deltasIn)),
          [`tp${receivers}_repaired_by_anti_entropy`]: others.reduce((sum, p) => sum + p.peer.sync.counters.rowsRepaired, 0) - repaired0,
          [`tp${receivers}_gossip_mesh_complete`]: meshed,
          [`tp${receivers}_process_cpu_cores`]: ownCores(cpu),
          [`burst${receivers}_messages`]: messages,
          [`burst${receivers}_deltas_per_message`]: changes / messages,
          [`burst${receivers}_gossip_bytes_per_change`]: (g.bytesOut - g0.bytesOut) / changes,
          [`burst${receivers}_wire_writer_bytes_per_change`]: (wireSince(mark, portsOf(a, peers)) - idle.writer * seconds) / changes,
          [`burst${receivers}_wire_mesh_bytes_per_change`]: (wireSince(mark) - idle.all * seconds) / changes,
        })
        progress(
          `${engine}: throughput to ${receivers}: ${fmt(m[`tp${receivers}_changes_per_s`])} changes/s replicated (A wrote them at ${fmt(m[`tp${receivers}_local_changes_per_s`])}/s; ` +
            `all converged after ${seconds.toFixed(1)} s, the first after ${fmt(m[`tp${receivers}_first_peer_seconds`], 1)} s); ${fmt(messages)} messages, ${fmt(m[`burst${receivers}_gossip_bytes_per_change`], 1)} B gossip payload per change`,
        )
      }
    } finally {
      await stopAll(peers)
    }
  }
}

/** Bytes of one anti-entropy round by message kind, from a shadow round run in-process (no libp2p). */
interface Breakdown {
  frames: number
  bytes: number
  /** hello + children (tree descent) + leaves (key / hash lists). */
  treeBytes: number
  /** fetch requests (keys, versions) + fetch responses + pushes. */
  rowBytes: number
  /** Row documents or deltas inside the row frames. */
  rowPayload: number
  /** Row versions (state vectors / heads) inside the row frames. */
  versionBytes: number
  byType: Record<string, { frames: number; bytes: number }>
}

async function shadowRound(initiator: Running, responder: Running, table: string): Promise<{ stats: RoundStats; ms: number; breakdown: Breakdown }> {
  const here = new StoreReplica(initiator.peer.db.replication(), {})
  const there = new StoreReplica(responder.peer.db.replication(), {})
  const b: Breakdown = { frames: 0, bytes: 0, treeBytes: 0, rowBytes: 0, rowPayload: 0, versionBytes: 0, byType: {} }
  const count = (kind: string, bytes: number): void => {
    const e = (b.byType[kind] ??= { frames: 0, bytes: 0 })
    e.frames++
    e.bytes += bytes
    b.frames++
    b.bytes += bytes
  }
  const ask: Ask = async (request: SyncRequest): Promise<SyncResponse> => {
    const req = encodeRequest(request)
    const response = await answer(there, decodeRequest(req), initiator.peer.node.peerId.toString())
    const res = encodeResponse(response)
    count(`${request.type} request`, req.length)
    count(`${request.type} response`, res.length)
    if (request.type === 'hello' || request.type === 'children' || request.type === 'leaves') b.treeBytes += req.length + res.length
    else b.rowBytes += req.length + res.length
    if (request.type === 'fetch') for (const i of request.items) b.versionBytes += i.version?.length ?? 0
    if (request.type === 'push') for (const r of request.rows) b.rowPayload += r.bytes.length
    if (response.type === 'fetch') {
      for (const r of response.rows) {
        b.rowPayload += r.bytes?.length ?? 0
        b.versionBytes += r.version?.length ?? 0
      }
    }
    if (response.type === 'range') for (const r of response.rows) b.rowPayload += r.bytes.length
    return decodeResponse(res, request.type)
  }
  const t0 = performance.now()
  const stats = await reconcile(here, ask, { from: responder.peer.node.peerId.toString() })
  const ms = performance.now() - t0
  if (rootsOf(initiator, table) !== rootsOf(responder, table)) throw new Error('the shadow round left the replicas different')
  return { stats, ms, breakdown: b }
}

/** Makes DIFF_ROWS rows differ on A without gossip: updates of existing rows or new rows. Returns the payload B lacks. */
async function diverge(a: Running, engine: EngineName, kind: 'updated' | 'new', batch: number, rows: number): Promise<number> {
  const name = tableOf(engine)
  const t = a.peer.db.table(name)
  a.peer.gossip.stop()
  try {
    if (kind === 'updated') {
      let payload = 0
      const unsubscribe = a.peer.db.subscribe((e) => {
        if (e.table === name && e.origin === 'local') payload += e.delta.length
      })
      // Spread over the key space (and so over partitions and digest leaves); `batch` picks other rows each time.
      // An odd step (coprime with the 8 partitions) spreads the rows over every partition.
      let step = Math.floor((rows - 4) / DIFF_ROWS)
      if (step % 2 === 0) step--
      if (step < 4) throw new Error(`the anti-entropy phase needs at least ${6 * DIFF_ROWS} rows`)
      await Promise.all(Array.from({ length: DIFF_ROWS }, (_, j) => t.update(idOf('ae', j * step + batch), { shelf: `D${batch}-${j}` })))
      unsubscribe()
      return payload
    }
    const from = rows + batch * DIFF_ROWS
    await loadRows(t, 'ae', from, DIFF_ROWS)
    let payload = 0
    for (let p = 0; p < PARTITIONS; p++) {
      const keys: string[] = []
      for (let i = from; i < from + DIFF_ROWS; i++) if (storeOf(i) === String(p)) keys.push(idOf('ae', i))
      for (const doc of await a.peer.db.replication().encodedRows(name, String(p), keys)) payload += doc?.length ?? 0
    }
    return payload
  } finally {
    a.peer.gossip.start()
  }
}

/** 4, 5, 6. Initial load of an empty B from A (N rows), then rounds in sync and with 1k rows differing. */
async function benchAntiEntropy(engine: EngineName, m: Metrics): Promise<void> {
  const n = SIZES.aeRows[engine]
  const name = tableOf(engine)
  const dirA = await tempDir('ae-a')
  progress(`${engine}: anti-entropy: A writes ${n} rows (plain Shoal, chunks of ${LOAD_CHUNK} concurrent puts)`)
  {
    const db = await Shoal.open({ dir: dirA })
    await db.defineTable(stockSchema(engine))
    const t0 = performance.now()
    let next = n / 4
    await loadRows(db.table(name), 'ae', 0, n, (done) => {
      if (done >= next) {
        progress(`  A: ${done} of ${n} rows written (${fmt(rate(done, performance.now() - t0))}/s)`)
        next += n / 4
      }
    })
    m.ae_a_local_puts_per_s = rate(n, performance.now() - t0)
    await db.close()
  }
  const peers: Running[] = []
  try {
    // A never starts a round on connect (its jittered delay is up to ~23 days): the empty B, which
    // does (within 100 ms), runs the initial load as initiator, pulling range pages; and no round of
    // A's can start in the middle of a later measurement. (Pushed by A, the load runs at the same rate.)
    const a = await startPeer('A', { dir: dirA, tables: [stockSchema(engine)], connectDelayMs: 2_000_000_000 })
    peers.push(a)
    // B starts empty, knowing no table: it learns the schema from A's catalog in the first round.
    const b = await startPeer('B', { tables: [] })
    peers.push(b)
    gc()

    progress(`${engine}: initial load: empty B dials A, which holds ${n} rows`)
    const s0 = { ...b.peer.sync.counters }
    const mark = wireMark()
    const t0 = performance.now()
    let next = n / 10
    await profiled(PROF_DIR, `initial-load-${engine}`, async () => {
      await b.peer.node.dial(addr(a))
      await eventually(
        `B holds ${n} rows`,
        () => {
          const count = b.peer.db.replication().rowCount(name)
          if (count >= next) {
            progress(`  B: ${count} of ${n} rows (${fmt(rate(count, performance.now() - t0))}/s)`)
            next += n / 10
          }
          return count === n
        },
        900_000,
        10,
      )
    }, progress)
    const loadMs = performance.now() - t0
    const s1 = b.peer.sync.counters
    m.ae_rows = n
    m.initial_load_seconds = loadMs / 1000
    m.initial_load_rows_per_s = rate(n, loadMs)
    m.initial_load_sync_bytes_per_row = (s1.bytesIn - s0.bytesIn + s1.bytesOut - s0.bytesOut) / n
    m.initial_load_wire_bytes_per_row = wireSince(mark) / n
    m.initial_load_rss_mib = process.memoryUsage().rss / 2 ** 20
    progress(`${engine}: initial load: ${n} rows in ${(loadMs / 1000).toFixed(1)} s = ${fmt(m.initial_load_rows_per_s)} rows/s, ${fmt(m.initial_load_sync_bytes_per_row)} sync bytes/row`)
    await quiesce(peers)
    if (rootsOf(a, name) !== rootsOf(b, name)) throw new Error('after the initial load, A and B differ')

    progress(`${engine}: anti-entropy: ${SIZES.inSyncRounds} rounds from B with A, both holding the same ${n} rows`)
    const times: number[] = []
    const bytes: number[] = []
    for (let i = 0; i < SIZES.inSyncRounds; i++) {
      const r = await roundWith(b, a, peers)
      if (r.stats.differing !== 0 || r.stats.rowsReceived + r.stats.rowsSent !== 0) throw new Error(`an in-sync round found differences: ${JSON.stringify(r.stats)}`)
      times.push(r.ms)
      bytes.push(r.bytes)
      m.insync_shared_partitions = r.stats.shared
    }
    m.insync_round_ms = median(times)
    m.insync_round_ms_runs = times
    m.insync_round_bytes = median(bytes)
    progress(`${engine}: in-sync round: ${fmt(m.insync_round_ms, 1)} ms (median), ${fmt(m.insync_round_bytes)} bytes, ${m.insync_shared_partitions} partitions compared`)

    for (const kind of ['updated', 'new'] as const) {
      const k = kind === 'updated' ? 'upd' : 'new'
      // The first round that descends a tree loads it from LevelDB (every leaf of the partition, on
      // both peers); later rounds find the trees cached. The updated-rows round comes first: cold.
      progress(`${engine}: anti-entropy: ${DIFF_ROWS} ${kind} rows on A (gossip stopped), one round from B over libp2p${kind === 'updated' ? ' (digest trees not loaded yet)' : ''}`)
      const payload = await diverge(a, engine, kind, 1, n)
      const r = await profiled(PROF_DIR, `round-${kind}-${engine}`, () => roundWith(b, a, peers), progress)
      if (rootsOf(a, name) !== rootsOf(b, name)) throw new Error(`after a round with ${kind} rows, A and B differ`)
      Object.assign(m, {
        [`diff_${k}_round_ms`]: r.ms,
        [`diff_${k}_round_bytes`]: r.bytes,
        [`diff_${k}_payload_bytes`]: payload,
        [`diff_${k}_ratio`]: r.bytes / payload,
        [`diff_${k}_rows_received`]: r.stats.rowsReceived,
        [`diff_${k}_rows_sent`]: r.stats.rowsSent,
        [`diff_${k}_changed_there`]: r.stats.changedThere,
        [`diff_${k}_changed_here`]: r.stats.changedHere,
        [`diff_${k}_differing_partitions`]: r.stats.differing,
      })
      progress(
        `  round: ${fmt(r.ms, 1)} ms, ${fmt(r.bytes)} bytes for ${fmt(payload)} bytes of payload (${fmt(r.bytes / payload, 2)}×); ${r.stats.differing} partitions differed; ` +
          `rows received ${r.stats.rowsReceived} (changed ${r.stats.changedHere}), sent ${r.stats.rowsSent} (changed ${r.stats.changedThere} on A)`,
      )
      progress(`${engine}: anti-entropy: ${DIFF_ROWS} more ${kind} rows on A, shadow round in-process to split the bytes by message kind`)
      const payload2 = await diverge(a, engine, kind, 2, n)
      await quiesce(peers, 300)
      const s = await shadowRound(b, a, name)
      const d = s.breakdown
      Object.assign(m, {
        [`diff_${k}_shadow_bytes`]: d.bytes,
        [`diff_${k}_shadow_payload_bytes`]: payload2,
        [`diff_${k}_shadow_tree_bytes`]: d.treeBytes,
        [`diff_${k}_shadow_row_frame_bytes`]: d.rowBytes,
        [`diff_${k}_shadow_row_data_bytes`]: d.rowPayload,
        [`diff_${k}_shadow_version_bytes`]: d.versionBytes,
        [`diff_${k}_row_frames_ratio`]: d.rowBytes / payload2,
        [`diff_${k}_shadow_frames`]: d.frames,
        [`diff_${k}_shadow_by_type`]: JSON.stringify(d.byType),
        [`diff_${k}_shadow_ms`]: s.ms,
      })
      if (kind === 'updated') {
        progress(`${engine}: anti-entropy: ${DIFF_ROWS} more updated rows on A, one more round from B over libp2p (digest trees now cached)`)
        const payload3 = await diverge(a, engine, kind, 3, n)
        const warm = await profiled(PROF_DIR, `round-updated-warm-${engine}`, () => roundWith(b, a, peers), progress)
        if (rootsOf(a, name) !== rootsOf(b, name)) throw new Error('after a round with updated rows, A and B differ')
        m.diff_upd_warm_round_ms = warm.ms
        m.diff_upd_warm_round_bytes = warm.bytes
        m.diff_upd_warm_payload_bytes = payload3
        progress(`  round: ${fmt(warm.ms, 1)} ms, ${fmt(warm.bytes)} bytes for ${fmt(payload3)} bytes of payload`)
      }
      progress(
        `  shadow: ${fmt(d.bytes)} bytes in ${d.frames} frames = ${fmt(d.treeBytes)} tree/hash/key-list (hello, children, leaves) + ${fmt(d.rowBytes)} row frames ` +
          `(of which ${fmt(d.rowPayload)} row data, ${fmt(d.versionBytes)} versions) for ${fmt(payload2)} bytes of payload; ${Object.entries(d.byType)
            .map(([t, v]) => `${t} ${v.frames}×/${fmt(v.bytes)} B`)
            .join(', ')}`,
      )
    }
  } finally {
    await stopAll(peers)
    await removeDir(dirA)
  }
}

// ---- report ----------------------------------------------------------------------------------

interface Line {
  label: string
  key: string
  unit: string
  digits?: number
  target?: { text: string; ok: (v: number) => boolean }
}

const perRecv = (r: number): Line[] => [
  { label: `replicated changes/s, A → ${r} peers (all converged)`, key: `tp${r}_changes_per_s`, unit: '/s' },
  { label: `  A's own write rate meanwhile`, key: `tp${r}_local_changes_per_s`, unit: '/s' },
  { label: `  seconds until the last peer converged`, key: `tp${r}_seconds`, unit: 's', digits: 1 },
  { label: `  … the first peer`, key: `tp${r}_first_peer_seconds`, unit: 's', digits: 1 },
  { label: `  rows repaired by anti-entropy meanwhile`, key: `tp${r}_repaired_by_anti_entropy`, unit: '' },
  { label: `  this process's CPU (cores of ${cpus().length})`, key: `tp${r}_process_cpu_cores`, unit: '', digits: 2 },
]

function lines(): Line[] {
  const n = (e: number) => (e >= 1000 ? `${e / 1000}k` : String(e))
  return [
    { label: 'latency A → B, p50 (update call → ChangeEvent on B)', key: 'latency_b_p50_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → B, p99', key: 'latency_b_p99_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → B, max', key: 'latency_b_max_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → C, p50', key: 'latency_c_p50_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → C, p99', key: 'latency_c_p99_ms', unit: 'ms', digits: 1 },
    { label: 'latency A → C, max', key: 'latency_c_max_ms', unit: 'ms', digits: 1 },
    { label: '  of which: committed on A (its ChangeEvent), p50', key: 'latency_a_commit_p50_ms', unit: 'ms', digits: 1 },
    { label: '  … gossip message arrived at B, p50', key: 'latency_b_message_p50_ms', unit: 'ms', digits: 1 },
    { label: '  … gossip message at B, p99', key: 'latency_b_message_p99_ms', unit: 'ms', digits: 1 },
    { label: '  samples lost (not seen within 10 s)', key: 'latency_lost', unit: '' },
    ...SIZES.receivers.flatMap(perRecv),
    { label: 'single change, paced: engine delta', key: 'paced_delta_bytes', unit: 'B' },
    { label: 'single change, paced: deltas per gossip message', key: 'paced_deltas_per_message', unit: '', digits: 2 },
    { label: 'single change, paced: Shoal gossip message', key: 'paced_gossip_bytes_per_change', unit: 'B', digits: 1 },
    { label: "single change, paced: TCP bytes from A's sockets (to 2 peers)", key: 'paced_wire_writer_bytes_per_change', unit: 'B' },
    { label: 'single change, paced: TCP bytes, whole 3-peer mesh', key: 'paced_wire_mesh_bytes_per_change', unit: 'B' },
    ...SIZES.receivers.flatMap((r): Line[] => [
      { label: `coalesced burst (A → ${r}): deltas per gossip message`, key: `burst${r}_deltas_per_message`, unit: '', digits: 1 },
      { label: `coalesced burst (A → ${r}): Shoal gossip bytes per change`, key: `burst${r}_gossip_bytes_per_change`, unit: 'B', digits: 1 },
      { label: `coalesced burst (A → ${r}): TCP bytes from A's sockets per change`, key: `burst${r}_wire_writer_bytes_per_change`, unit: 'B', digits: 1 },
      { label: `coalesced burst (A → ${r}): TCP bytes, whole mesh, per change`, key: `burst${r}_wire_mesh_bytes_per_change`, unit: 'B', digits: 1 },
    ]),
    { label: 'anti-entropy data set (rows on A)', key: 'ae_rows', unit: '' },
    { label: '  A writing them locally (chunks of 4096)', key: 'ae_a_local_puts_per_s', unit: '/s' },
    { label: 'initial load into an empty peer', key: 'initial_load_rows_per_s', unit: 'rows/s', target: { text: '≥ 50,000 rows/s', ok: (v) => v >= 50_000 } },
    { label: '  seconds', key: 'initial_load_seconds', unit: 's', digits: 1 },
    { label: '  sync protocol bytes per row', key: 'initial_load_sync_bytes_per_row', unit: 'B' },
    { label: '  TCP bytes per row (all sockets)', key: 'initial_load_wire_bytes_per_row', unit: 'B' },
    { label: 'in-sync round (B → A), bytes', key: 'insync_round_bytes', unit: 'B', target: { text: '≤ 2 KB', ok: (v) => v <= 2048 } },
    { label: 'in-sync round (B → A), time (median)', key: 'insync_round_ms', unit: 'ms', digits: 1, target: { text: '≤ 50 ms', ok: (v) => v <= 50 } },
    ...(['upd', 'new'] as const).flatMap((k): Line[] => {
      const what = k === 'upd' ? `${n(DIFF_ROWS)} updated rows` : `${n(DIFF_ROWS)} new rows`
      return [
        { label: `${what}: round time${k === 'upd' ? ' (first descent: loads the digest trees)' : ''}`, key: `diff_${k}_round_ms`, unit: 'ms', digits: 0 },
        ...(k === 'upd' ? [{ label: `${what}: round time, trees cached (another 1k rows)`, key: 'diff_upd_warm_round_ms', unit: 'ms', digits: 0 }] : []),
        { label: `${what}: round bytes`, key: `diff_${k}_round_bytes`, unit: 'B' },
        { label: `${what}: payload (${k === 'upd' ? 'the change deltas' : 'encoded rows'})`, key: `diff_${k}_payload_bytes`, unit: 'B' },
        { label: `${what}: round bytes ÷ payload`, key: `diff_${k}_ratio`, unit: '×', digits: 2 },
        { label: `${what}: rows received by B`, key: `diff_${k}_rows_received`, unit: '' },
        { label: `${what}: rows B pushed to A`, key: `diff_${k}_rows_sent`, unit: '' },
        { label: `${what}: … of them changing A`, key: `diff_${k}_changed_there`, unit: '' },
        { label: `${what} (shadow): tree + hash/key lists`, key: `diff_${k}_shadow_tree_bytes`, unit: 'B' },
        { label: `${what} (shadow): row frames`, key: `diff_${k}_shadow_row_frame_bytes`, unit: 'B' },
        { label: `${what} (shadow): row frames ÷ payload`, key: `diff_${k}_row_frames_ratio`, unit: '×', digits: 2, target: { text: '≤ 1.5× (+ hashes)', ok: (v) => v <= 1.5 } },
      ]
    }),
    { label: 'peak RSS of the whole process (all peers)', key: 'peak_rss_mib', unit: 'MiB' },
  ]
}

function fmt(value: unknown, digits = 0): string {
  if (typeof value === 'number') return Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : String(value)
  if (typeof value === 'boolean') return value ? 'yes' : 'NO'
  return '—'
}

function verdict(line: Line, v: unknown): string {
  if (line.target === undefined) return ''
  return typeof v === 'number' ? (line.target.ok(v) ? 'met' : 'MISSED') : '—'
}

function table(results: Partial<Record<EngineName, Metrics>>): string {
  const engines = ENGINES.filter((e) => results[e] !== undefined)
  const header = ['metric', ...engines, 'target', 'verdict']
  const rows: string[][] = [header]
  for (const line of lines()) {
    const values = engines.map((e) => results[e]![line.key])
    if (values.every((v) => v === undefined)) continue
    const cells = values.map((v) => (v === undefined ? '—' : `${fmt(v, line.digits ?? 0)}${line.unit === '' ? '' : ` ${line.unit}`}`))
    const verdicts = line.target === undefined ? '' : engines.map((e, i) => `${verdict(line, values[i])}`).join(' / ')
    rows.push([line.label, ...cells, line.target?.text ?? '', verdicts])
  }
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  const render = (r: string[]) => '| ' + r.map((cell, c) => (c === 0 || c >= header.length - 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ') + ' |'
  const sep = '|' + widths.map((w, c) => (c === 0 || c >= header.length - 2 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|'
  return [render(rows[0]!), sep, ...rows.slice(1).map(render)].join('\n')
}

function targetReport(results: Partial<Record<EngineName, Metrics>>): { text: string; json: Record<string, Record<string, string>> } {
  const json: Record<string, Record<string, string>> = {}
  const out: string[] = []
  for (const line of lines()) {
    if (line.target === undefined) continue
    const label = `${line.label}: ${line.target.text}`
    json[label] = {}
    const parts: string[] = []
    for (const engine of ENGINES) {
      const v = results[engine]?.[line.key]
      const verdictText = typeof v === 'number' ? (line.target.ok(v) ? 'MET' : 'MISSED') : 'not measured'
      const rows = results[engine]?.ae_rows
      json[label]![engine] = verdictText
      parts.push(`${engine}${typeof rows === 'number' ? ` (${rows} rows)` : ''}: ${verdictText}${typeof v === 'number' ? ` (${fmt(v, line.digits ?? 0)} ${line.unit})` : ''}`)
    }
    out.push(`- ${label}: ${parts.join('; ')}`)
  }
  return { text: out.join('\n'), json }
}

function machine(): Record<string, string | number> {
  let disk = 'unknown'
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n')
    const root = mounts.find((l) => l.split(' ')[1] === '/')
    if (root !== undefined) disk = `${root.split(' ')[0]} (${root.split(' ')[2]}), tmpdir ${tmpdir()}`
  } catch {
    // not Linux
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    disk,
  }
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const SRC_HASH = sourceHash(resolve(dirname(THIS_FILE), '../../src'))
  installWireCounter()
  progress(`Shoal mesh bench${QUICK ? ' (quick)' : ''}; engines ${ENGINES.join(', ')}; phases ${[...PHASES].join(', ')}`)
  const results: Partial<Record<EngineName, Metrics>> = {}
  for (const engine of ENGINES) results[engine] = {}
  const foreign: Record<string, number | null> = {}
  const runMark = cpuMark()
  const phase = async (name: string, fn: () => Promise<void>): Promise<void> => {
    const mark = cpuMark()
    await fn()
    foreign[name] = foreignCores(mark)
  }
  if (PHASES.has('latency')) await phase('latency', () => benchLatency(results))
  if (PHASES.has('throughput')) await phase('throughput', () => benchThroughput(results))
  if (PHASES.has('ae')) for (const engine of ENGINES) await phase(`ae:${engine}`, () => benchAntiEntropy(engine, results[engine]!))
  const peakRss = (process.resourceUsage().maxRSS * 1024) / 2 ** 20
  for (const engine of ENGINES) results[engine]!.peak_rss_mib = peakRss
  foreign.whole_run = foreignCores(runMark)
  const busiest = Object.entries(foreign).filter(([k, v]) => k !== 'whole_run' && typeof v === 'number' && v >= 0.25)
  const seconds = (performance.now() - started) / 1000
  const targets = targetReport(results)
  const sizes = [
    `latency ${SIZES.latencySamples} samples over ${SIZES.latencyRows} rows, one update every ≥ ${PACE_MS} ms`,
    `throughput ${ENGINES.map((e) => `${e} ${SIZES.throughputChanges[e]}`).join(', ')} changes over ${SIZES.throughputRows} rows in chunks of ${SIZES.throughputChunk}, to ${SIZES.receivers.join(' and ')} peers`,
    `anti-entropy ${ENGINES.map((e) => `${e} ${SIZES.aeRows[e]}`).join(', ')} rows, ${DIFF_ROWS} differing`,
    `${PARTITIONS} partitions; gossip coalescing window at its default; syncWrites default (true)`,
  ].join('; ')
  const out = [
    '',
    `Shoal mesh benchmark — ${new Date().toISOString()} — ${QUICK ? 'quick' : 'full'} run in ${seconds.toFixed(0)} s`,
    `machine: ${Object.entries(machine()).map(([k, v]) => `${k} ${v}`).join(', ')}; src ${SRC_HASH}`,
    `sizes: ${sizes}`,
    '',
    table(results),
    '',
    'targets:',
    targets.text,
    '',
    `peak RSS of the process: ${fmt(peakRss)} MiB; peer log lines (refusals, sync errors): ${allLogs.length}`,
    `other processes' CPU during the run: ${fmt(foreign.whole_run ?? null, 2)} cores on average (of ${cpus().length})` +
      (busiest.length > 0 ? `; busy neighbours (≥ 0.25 cores) during ${busiest.map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}: treat those numbers with care` : ''),
    '',
  ].join('\n')
  process.stdout.write(out)
  if (allLogs.length > 0) progress(`peer log (first 10 of ${allLogs.length}):\n  ${allLogs.slice(0, 10).join('\n  ')}`)
  if (SAVE) {
    const dir = resolve(dirname(THIS_FILE), '../../bench/results')
    await mkdir(dir, { recursive: true })
    const date = new Date().toISOString()
    const json = JSON.stringify(
      {
        date,
        command: `node --expose-gc dist/bench/mesh.js ${argv.join(' ')}`.trim(),
        quick: QUICK,
        complete: COMPLETE,
        seconds,
        srcHash: SRC_HASH,
        machine: machine(),
        sizes: { ...SIZES, partitions: PARTITIONS, loadChunk: LOAD_CHUNK, paceMs: PACE_MS, diffRows: DIFF_ROWS },
        peakRssMiB: peakRss,
        results,
        foreignCpuCores: foreign,
        targets: targets.json,
        peerLog: allLogs.slice(0, 50),
      },
      null,
      2,
    )
    const kind = QUICK ? '-quick' : COMPLETE ? '' : '-partial'
    const name = `mesh${kind}-${date.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z')}.json`
    await writeFile(join(dir, name), json + '\n')
    if (COMPLETE) await writeFile(join(dir, 'mesh-latest.json'), json + '\n')
    progress(`wrote bench/results/${name}${COMPLETE ? ' and bench/results/mesh-latest.json' : ' (mesh-latest.json is only written by complete runs)'}`)
  }
}

main().then(
  // libp2p and LevelDB handles are closed, but a stray timer must not keep the process alive.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
