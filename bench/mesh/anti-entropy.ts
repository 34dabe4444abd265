/*
 * Phase ae: anti-entropy between A (holding N rows) and B: the initial load of an empty B, a round
 * with both in sync, rounds with 1k rows differing (updated rows, new rows), their bytes split into
 * tree/hash traffic and row traffic by a shadow round run in-process over the same reconciler.
 */
import { Shoal, type EngineName } from '../../src/index.js'
import { answer, reconcile, type Ask, type RoundStats } from '../../src/sync/reconciler.js'
import { StoreReplica } from '../../src/sync/store-replica.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type SyncRequest, type SyncResponse } from '../../src/sync/sync-messages.js'
import { gc } from '../lib/memory.js'
import { eventually } from '../lib/poll.js'
import { profiled } from '../lib/profile.js'
import { median, rate } from '../lib/stats.js'
import { fmt } from '../lib/table.js'
import { removeDir, tempDir } from '../lib/temp.js'
import { wireMark, wireSince } from '../lib/wire.js'
import { DIFF_ROWS, idOf, LOAD_CHUNK, loadRows, PARTITIONS, PROF_DIR, progress, SIZES, stockSchema, storeOf, tableOf, type Metrics } from './config.js'
import { storeOptionsFor } from './trust.js'
import { addr, quiesce, rootsOf, roundWith, startPeer, stopAll, type Running } from './harness.js'

/** Bytes of one anti-entropy round by message kind, from a shadow round run in-process (no libp2p). */
interface Breakdown {
  frames: number
  bytes: number
  /** hello + children (tree descent) + leaves (key / hash lists) + changes and settle (the change feed's key / hash lists and root check). */
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
  // In a private mesh the shadow replicas check changesets as the peers do.
  const here = new StoreReplica(initiator.peer.db.replication(), {}, undefined, initiator.peer.trust?.gate)
  const there = new StoreReplica(responder.peer.db.replication(), {}, undefined, responder.peer.trust?.gate)
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
    if (request.type === 'hello' || request.type === 'children' || request.type === 'leaves' || request.type === 'changes' || request.type === 'settle') b.treeBytes += req.length + res.length
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
  // As the peers' own rounds go: both speak /shoal/sync/1.2.0, so the change feed is tried first.
  const stats = await reconcile(here, ask, { from: responder.peer.node.peerId.toString(), feed: true })
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
export async function benchAntiEntropy(engine: EngineName, m: Metrics): Promise<void> {
  const n = SIZES.aeRows[engine]
  const name = tableOf(engine)
  const dirA = await tempDir('mesh', 'ae-a')
  progress(`${engine}: anti-entropy: A writes ${n} rows (plain Shoal, chunks of ${LOAD_CHUNK} concurrent puts)`)
  {
    const db = await Shoal.open({ dir: dirA, ...(await storeOptionsFor(dirA)) })
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
        [`diff_${k}_by_feed`]: r.stats.byFeed,
      })
      progress(
        `  round: ${fmt(r.ms, 1)} ms, ${fmt(r.bytes)} bytes for ${fmt(payload)} bytes of payload (${fmt(r.bytes / payload, 2)}×); ${r.stats.differing} partitions differed (${r.stats.byFeed} settled by the change feed); ` +
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
        `  shadow: ${fmt(d.bytes)} bytes in ${d.frames} frames = ${fmt(d.treeBytes)} tree/hash/key-list (hello, children, leaves, changes, settle) + ${fmt(d.rowBytes)} row frames ` +
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
