/* Phase latency: paced single updates on A, the time until B and C apply each; the bytes of one uncoalesced change. */
import type { ChangeEvent, EngineName } from '../../src/index.js'
import { topicFor } from '../../src/sync/gossip.js'
import { eventually, sleep } from '../lib/poll.js'
import { median, quantile } from '../lib/stats.js'
import { fmt } from '../lib/table.js'
import { wireMark, wireSince } from '../lib/wire.js'
import { ENGINES, idOf, loadRows, PACE_MS, progress, SIZES, stockSchema, storeOf, tableOf, type Metrics } from './config.js'
import { dataTopics, idleWireRate, portsOf, quiesce, startMesh, stopAll, waitGossipMesh, type Running } from './harness.js'

/** 1 + 3a. Paced single updates on A; arrival times on B and C; bytes of an uncoalesced change. */
export async function benchLatency(results: Partial<Record<EngineName, Metrics>>): Promise<void> {
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
