import type { ShoalStatus } from './shoal.js'

/*
 * What a running peer reports: the shapes of `GET /v1/status`, `shoal status --json` and the
 * counters behind `/metrics`. Types only, here so that peer/ (which produces them) and http/ and
 * cli/ (which serve and print them) share them without depending on each other.
 */

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
  /** Anti-entropy with this peer since this peer started, both directions, failed rounds included. */
  totals: SyncPeerTotals
}

export interface SyncPeerTotals {
  rounds: number
  failedRounds: number
  rowsIn: number
  rowsOut: number
  /** Anti-entropy frame bytes received from and sent to the peer. */
  bytesIn: number
  bytesOut: number
}

/** An initial load (or catch-up of a whole subtree) in progress: rows received of those expected. */
export interface LoadProgress {
  table: string
  partition: string
  from: string
  received: number
  /** The sending peer's live row count when the load began (deleted rows arrive too, so received may pass it). */
  expected: number
  /** Seconds left at the rate the load has gone so far; absent until a second of it has been seen. */
  etaSeconds?: number
}

export interface SyncStatus {
  rounds: number
  failedRounds: number
  rowsRepaired: number
  /** Differing partitions this peer's rounds reconciled by the change feed, and by walking the digest tree. */
  partitionsByFeed: number
  partitionsByTree: number
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
  /** The private mesh this peer belongs to (null: an open mesh). */
  mesh?: MeshStatus | null
}

/** This peer's place in its private mesh (docs/trust.md). */
export interface MeshStatus {
  mesh: string
  group: string
  /** Its own partitions (what rules granting 'own' mean). */
  partitions: string[]
  expiresAt: string
  rulesVersion: number
  revocations: number
  /** Per table named by the rules (and '*' for the others): which partitions this peer may write and read ('*', a list, or none). */
  rights: Array<{ table: string; write: '*' | string[]; read: '*' | string[] }>
  /** Peers connected and admitted, and peers refused recently with why. */
  admittedPeers: string[]
  refusedPeers: Array<{ peer: string; reason: string; at: string }>
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
  /** Of those, rounds that failed (timeout, a dropped connection, a refused request). */
  syncRoundsFailed: number
  /** Rows changed here by anti-entropy (repairs of what gossip missed, initial loads). */
  rowsRepaired: number
  /** Differing partitions this peer's own rounds reconciled by the change feed (what changed since the last round), and by the digest tree. */
  syncPartitionsByFeed: number
  syncPartitionsByTree: number
  /** Messages, frames or rows from peers that were refused (malformed, unknown table, …). */
  refused: number
  /** The same, by reason (a ShoalError code such as DELTA_INVALID, or RATE_LIMITED, NOT_CARRIED, …). */
  refusedByReason: Record<string, number>
  connectedPeers: number
  /** Anti-entropy frame bytes by message type (a request and its answer under the request's type), both roles. */
  syncBytesByMessage: Record<string, { in: number; out: number }>
  /** Anti-entropy with each peer met (SyncPeerStatus.totals). */
  syncByPeer: Array<{ peer: string; totals: SyncPeerTotals }>
}

/*
 * The SQL bridge (src/bridge/), in SymmetricDS's terms: per mirrored table, changes captured (SQL →
 * Shoal, durable in the store), pending (captured in the database, not yet durable in the store),
 * written back (Shoal → SQL rows written), dead-lettered, and the age of the oldest pending change.
 */

export interface BridgeTableStatus {
  /** The Shoal table. */
  table: string
  /** The SQL table. */
  sqlTable: string
  /** Captured changes made durable in the store since the peer started. */
  captured: number
  /** Captured changes still waiting in the database's capture table. */
  pending: number
  /** Seconds since the oldest pending change was captured (null: none pending). */
  oldestPendingSeconds: number | null
  /** Rows written into the SQL table since the peer started. */
  writtenBack: number
  /** Dead letters of this table now (refused writes and refused captures). */
  deadLetters: number
  /** An initial load (or catch-up) running now: captured changes applied of those found. */
  loading: { done: number; total: number } | null
  /** Why this table is not mirrored right now (a refused schema change…), or null. */
  error: string | null
}

export interface BridgeDeadLetterStatus {
  table: string
  key: string
  direction: 'write' | 'capture'
  reason: string
  attempts: number
  /** ISO time of the next retry (write dead letters), or null. */
  nextAttempt: string | null
}

export interface BridgeStatus {
  /** sqlite:PATH or the URL without its password. */
  database: string
  dialect: 'sqlite' | 'postgres' | 'mysql'
  /** 'connecting' until the database answers (retried with backoff), then 'running'. */
  state: 'connecting' | 'running' | 'stopped'
  /** The last connection or loop error, while it lasts. */
  error: string | null
  /** Wake-ups pushed by the database (LISTEN/NOTIFY, file watch) rather than polled. */
  push: boolean
  tables: BridgeTableStatus[]
  /** The oldest dead letters (at most 20: bridge/status.ts, MAX_DEAD_LETTERS_SHOWN). */
  deadLetters: BridgeDeadLetterStatus[]
}

