import { Counter, Gauge, Registry } from 'prom-client'
import type { PeerCounters } from '../status.js'
import type { Shoal } from '../shoal.js'

/** Prometheus counter name (with its `_total` suffix) → the PeerCounters field it exports. */
type CounterField = Exclude<keyof PeerCounters, 'refused' | 'refusedByReason' | 'connectedPeers'>

const COUNTERS: ReadonlyArray<readonly [string, CounterField, string]> = [
  ['shoal_deltas_in_total', 'deltasIn', 'Row deltas received from peers (gossip and anti-entropy).'],
  ['shoal_deltas_out_total', 'deltasOut', 'Row deltas sent to peers (gossip and anti-entropy).'],
  ['shoal_bytes_in_total', 'bytesIn', 'Replication payload bytes received from peers.'],
  ['shoal_bytes_out_total', 'bytesOut', 'Replication payload bytes sent to peers.'],
  ['shoal_sync_rounds_total', 'syncRounds', 'Anti-entropy rounds finished, as initiator or responder.'],
  ['shoal_rows_repaired_total', 'rowsRepaired', 'Rows changed here by anti-entropy (repairs and initial loads).'],
]

/**
 * The peer's Prometheus metrics, in a registry of its own (not prom-client's global one) so that
 * several peers in one process each export their own. Values are snapshots taken at scrape time:
 * the peer keeps plain running totals, and one snapshot per scrape keeps the series consistent.
 */
export class ShoalMetrics {
  private readonly registry = new Registry()
  private readonly counters = new Map<CounterField, Counter>()
  private readonly refused: Counter<'reason'>
  private readonly rows: Gauge<'table' | 'partition'>
  private readonly connectedPeers: Gauge
  /** Scrapes run one at a time: each resets and refills the shared series before rendering them. */
  private last: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly db: Shoal,
    private readonly snapshot: () => PeerCounters,
  ) {
    for (const [name, field, help] of COUNTERS) {
      this.counters.set(field, new Counter({ name, help, registers: [this.registry] }))
    }
    this.refused = new Counter({ name: 'shoal_refused_total', help: 'Messages, frames or rows from peers that were refused, by reason.', labelNames: ['reason'], registers: [this.registry] })
    this.rows = new Gauge({ name: 'shoal_rows', help: 'Live rows per table and partition.', labelNames: ['table', 'partition'], registers: [this.registry] })
    this.connectedPeers = new Gauge({ name: 'shoal_connected_peers', help: 'Peers with an open libp2p connection.', registers: [this.registry] })
  }

  get contentType(): string {
    return this.registry.contentType
  }

  render(): Promise<string> {
    const next = this.last.then(() => this.renderNow())
    this.last = next.catch(() => undefined)
    return next
  }

  private async renderNow(): Promise<string> {
    const totals = this.snapshot()
    for (const [field, counter] of this.counters) {
      counter.reset()
      // A Counter cannot be set; reset + inc exports the running total. Never negative (inc throws).
      counter.inc(Math.max(0, totals[field]))
    }
    this.refused.reset()
    for (const [reason, n] of Object.entries(totals.refusedByReason)) this.refused.inc({ reason }, n)
    this.connectedPeers.set(totals.connectedPeers)
    const status = await this.db.status()
    // Reset first so partitions that disappeared do not linger with their last count.
    this.rows.reset()
    for (const table of status.tables) {
      for (const p of table.partitions) this.rows.set({ table: table.name, partition: p.partition }, p.rows)
    }
    return this.registry.metrics()
  }
}
