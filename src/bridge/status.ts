/*
 * What the bridge reports, in SymmetricDS's terms: per mirrored table, changes captured (SQL →
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
  /** The oldest dead letters (at most MAX_DEAD_LETTERS_SHOWN). */
  deadLetters: BridgeDeadLetterStatus[]
}

export const MAX_DEAD_LETTERS_SHOWN = 20
