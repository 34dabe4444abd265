/* Phase throughput: A issues N single-column changes in concurrent chunks to 2 and to 5 peers; the time until all converged, and the bytes per coalesced change. */
import type { EngineName } from '../../src/index.js'
import { cpuMark, ownCores } from '../lib/cpu.js'
import { eventually } from '../lib/poll.js'
import { profiled } from '../lib/profile.js'
import { rate } from '../lib/stats.js'
import { fmt } from '../lib/table.js'
import { wireMark, wireSince } from '../lib/wire.js'
import { ENGINES, idOf, loadRows, PROF_DIR, progress, SIZES, stockSchema, tableOf, type Metrics } from './config.js'
import { dataTopics, idleWireRate, portsOf, quiesce, rootsOf, startMesh, stopAll, waitGossipMesh } from './harness.js'

/** 2 + 3b. A issues N single-column changes in concurrent chunks; time until every receiver's roots equal A's. */
export async function benchThroughput(results: Partial<Record<EngineName, Metrics>>): Promise<void> {
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
