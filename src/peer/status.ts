import type { BridgeStatus } from '../bridge/status.js'
import type { ShoalStatus } from '../shoal.js'

/** One peer's view of anti-entropy with another peer. */
export interface SyncPeerStatus {
  peer: string
  /** 'syncing' while a reconciliation round with this peer runs. */
  state: 'idle' | 'syncing'
  /** The last finished round, if any. */
  lastRound: {
    at: string
    ok: boolean
    durationMs: number
    rowsReceived: number
    rowsSent: number
    bytesIn: number
    bytesOut: number
    error?: string
  } | null
}

/** An initial load (or catch-up of a whole subtree) in progress: rows received of those expected. */
export interface LoadProgress {
  table: string
  partition: string
  from: string
  received: number
  /** The sending peer's live row count when the load began (deleted rows arrive too, so received may pass it). */
  expected: number
}

export interface SyncStatus {
  rounds: number
  rowsRepaired: number
  peers: SyncPeerStatus[]
  loading: LoadProgress[]
}

/** What `GET /v1/status` and `shoal status` show for a running peer. */
export interface PeerStatus extends ShoalStatus {
  name: string | null
  peerId: string
  addresses: string[]
  connectedPeers: string[]
  http: string | null
  sync: SyncStatus
  /** The SQL bridge, when the config has one. */
  bridge?: BridgeStatus | null
}

/** Running totals exported as Prometheus metrics (GET /metrics). */
export interface PeerCounters {
  /** Row deltas received from peers (gossip + anti-entropy) and sent to them. */
  deltasIn: number
  deltasOut: number
  /** Replication payload bytes received and sent (gossip messages + anti-entropy frames). */
  bytesIn: number
  bytesOut: number
  /** Anti-entropy rounds finished (as initiator or responder). */
  syncRounds: number
  /** Rows changed here by anti-entropy (repairs of what gossip missed, initial loads). */
  rowsRepaired: number
  /** Messages or frames from peers that were refused (malformed, unknown table, …). */
  refused: number
  connectedPeers: number
}
