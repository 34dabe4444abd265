import { Counter, Gauge, Registry } from 'prom-client'
import type { BridgeStatus, BridgeTableStatus, PeerCounters, SyncPeerTotals } from '../status.js'
import type { Shoal } from '../shoal.js'

/** Prometheus counter name (with its `_total` suffix) → the PeerCounters field it exports. */
type CounterField = Exclude<keyof PeerCounters, 'refused' | 'refusedByReason' | 'connectedPeers' | 'syncByPeer' | 'syncBytesByMessage'>

/** Per-peer series (label `peer`) → the SyncPeerTotals field each exports. */
const PEER_COUNTERS: ReadonlyArray<readonly [string, keyof SyncPeerTotals, string]> = [
  ['shoal_sync_peer_rows_in_total', 'rowsIn', 'Rows received by anti-entropy from this peer.'],
  ['shoal_sync_peer_rows_out_total', 'rowsOut', 'Rows sent by anti-entropy to this peer.'],
  ['shoal_sync_peer_bytes_in_total', 'bytesIn', 'Anti-entropy frame bytes received from this peer.'],
  ['shoal_sync_peer_bytes_out_total', 'bytesOut', 'Anti-entropy frame bytes sent to this peer.'],
  ['shoal_sync_peer_rounds_failed_total', 'failedRounds', 'Anti-entropy rounds with this peer that failed.'],
]

const COUNTERS: ReadonlyArray<readonly [string, CounterField, string]> = [
  ['shoal_deltas_in_total', 'deltasIn', 'Row deltas received from peers (gossip and anti-entropy).'],
  ['shoal_deltas_out_total', 'deltasOut', 'Row deltas sent to peers (gossip and anti-entropy).'],
  ['shoal_bytes_in_total', 'bytesIn', 'Replication payload bytes received from peers.'],
  ['shoal_bytes_out_total', 'bytesOut', 'Replication payload bytes sent to peers.'],
  ['shoal_sync_rounds_total', 'syncRounds', 'Anti-entropy rounds finished, as initiator or responder.'],
  ['shoal_sync_rounds_failed_total', 'syncRoundsFailed', 'Anti-entropy rounds that failed (timeout, dropped connection, refused request).'],
  ['shoal_rows_repaired_total', 'rowsRepaired', 'Rows changed here by anti-entropy (repairs and initial loads).'],
  ['shoal_sync_partitions_by_feed_total', 'syncPartitionsByFeed', "Differing partitions this peer's rounds reconciled by the change feed (the rows changed since the last round)."],
  ['shoal_sync_partitions_by_tree_total', 'syncPartitionsByTree', "Differing partitions this peer's rounds reconciled by walking the digest tree."],
]

/**
 * The peer's Prometheus metrics, in a registry of its own (not prom-client's global one) so that
 * several peers in one process each export their own. Values are snapshots taken at scrape time:
 * the peer keeps plain running totals, and one snapshot per scrape keeps the series consistent.
 */
export class ShoalMetrics {
  private readonly registry = new Registry()
  private readonly counters = new Map<CounterField, Counter>()
  private readonly peerCounters = new Map<keyof SyncPeerTotals, Counter<'peer'>>()
  private readonly messageBytes: Counter<'direction' | 'message'>
  private readonly refused: Counter<'reason'>
  private readonly rows: Gauge<'table' | 'partition'>
  private readonly connectedPeers: Gauge
  private readonly sql: SqlBridgeMetrics | null
  /** Scrapes run one at a time: each resets and refills the shared series before rendering them. */
  private last: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly db: Shoal,
    private readonly snapshot: () => PeerCounters,
    bridge?: () => BridgeStatus | null,
  ) {
    this.sql = bridge === undefined ? null : new SqlBridgeMetrics(this.registry, bridge)
    for (const [name, field, help] of COUNTERS) {
      this.counters.set(field, new Counter({ name, help, registers: [this.registry] }))
    }
    for (const [name, field, help] of PEER_COUNTERS) {
      this.peerCounters.set(field, new Counter({ name, help, labelNames: ['peer'], registers: [this.registry] }))
    }
    this.messageBytes = new Counter({ name: 'shoal_sync_message_bytes_total', help: 'Anti-entropy frame bytes by message type (a request and its answer count under the request type), received (in) and sent (out).', labelNames: ['direction', 'message'], registers: [this.registry] })
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
    this.messageBytes.reset()
    for (const [message, b] of Object.entries(totals.syncBytesByMessage)) {
      this.messageBytes.inc({ direction: 'in', message }, b.in)
      this.messageBytes.inc({ direction: 'out', message }, b.out)
    }
    for (const [field, counter] of this.peerCounters) {
      counter.reset()
      for (const { peer, totals: t } of totals.syncByPeer) counter.inc({ peer }, Math.max(0, t[field]))
    }
    this.connectedPeers.set(totals.connectedPeers)
    const status = await this.db.status()
    // Reset first so partitions that disappeared do not linger with their last count.
    this.rows.reset()
    for (const table of status.tables) {
      for (const p of table.partitions) this.rows.set({ table: table.name, partition: p.partition }, p.rows)
    }
    this.sql?.refresh()
    return this.registry.metrics()
  }
}

/** SQL bridge series, per mirrored (Shoal) table, in SymmetricDS's terms (README, "SQL bridge"). */
const SQL_COUNTERS: ReadonlyArray<readonly [string, 'captured' | 'writtenBack', string]> = [
  ['shoal_sql_captured_total', 'captured', 'SQL changes captured and made durable in the store, per table.'],
  ['shoal_sql_written_back_total', 'writtenBack', 'Rows written back into the SQL table, per table.'],
]
const SQL_GAUGES: ReadonlyArray<readonly [string, (t: BridgeTableStatus) => number, string]> = [
  ['shoal_sql_pending', (t) => t.pending, 'Captured SQL changes not yet durable in the store, per table.'],
  ['shoal_sql_dead_letters', (t) => t.deadLetters, 'Writes (and captures) the database or the store refused, waiting in the dead-letter table, per table.'],
  ['shoal_sql_oldest_pending_seconds', (t) => t.oldestPendingSeconds ?? 0, 'Age of the oldest pending captured change (0: none), per table.'],
]

class SqlBridgeMetrics {
  private readonly counters: Array<[Counter<'table'>, 'captured' | 'writtenBack']>
  private readonly gauges: Array<[Gauge<'table'>, (t: BridgeTableStatus) => number]>
  private readonly up: Gauge

  constructor(
    registry: Registry,
    private readonly status: () => BridgeStatus | null,
  ) {
    this.counters = SQL_COUNTERS.map(([name, field, help]) => [new Counter({ name, help, labelNames: ['table'], registers: [registry] }), field])
    this.gauges = SQL_GAUGES.map(([name, read, help]) => [new Gauge({ name, help, labelNames: ['table'], registers: [registry] }), read])
    this.up = new Gauge({ name: 'shoal_sql_up', help: '1 while the SQL bridge is connected to its database, else 0.', registers: [registry] })
  }

  refresh(): void {
    const status = this.status()
    for (const [counter] of this.counters) counter.reset()
    for (const [gauge] of this.gauges) gauge.reset()
    this.up.set(status?.state === 'running' && status.error === null ? 1 : 0)
    if (status === null) return
    for (const table of status.tables) {
      for (const [counter, field] of this.counters) counter.inc({ table: table.table }, Math.max(0, table[field]))
      for (const [gauge, read] of this.gauges) gauge.set({ table: table.table }, read(table))
    }
  }
}
