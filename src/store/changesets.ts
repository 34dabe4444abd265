import { partitionId } from '../table/ids.js'
import type { ApplyResult } from '../table/engine.js'
import type { ResolvedSchema } from '../table/schema.js'
import { MAX_CHANGESET_BYTES, MAX_CHANGESET_ROWS, type Changeset } from '../trust/changeset.js'
import type { LogEntry } from './change-log.js'
import type { StoreCore } from './core.js'

/*
 * Changesets in the write path (docs/trust.md). A peer's own writes of one batch become one signed
 * changeset per (table, partition) (split if large), written to the log in the same atomic batch as
 * the rows; a peer's changeset is applied whole or not at all, and logged with its original bytes.
 */

/** A verified changeset from a peer (signature and rights checked by the caller). */
export interface ChangesetJob {
  kind: 'changeset'
  schema: ResolvedSchema
  changeset: Changeset
  bytes: Uint8Array
  origin: string
  resolve: (result: ChangesetOutcome) => void
  reject: (error: unknown) => void
}

/** 'known': the log holds it already; otherwise whether any row changed. */
export type ChangesetOutcome = 'changed' | 'unchanged' | 'known'

/** A changeset this batch writes to the log. */
export interface PendingLog {
  entry: LogEntry
  bytes: Uint8Array
}

/** Where a change event's signed changeset is: shared by the events of all its rows. */
export interface ChangesetRef {
  author: string
  seq: number
  bytes: Uint8Array
}

export interface LocalChange {
  table: string
  partition: string
  key: string
  delta: Uint8Array
  /** Set once the change's changeset is signed. */
  attach: (ref: ChangesetRef) => void
}

export function logEntryOf(c: Changeset): LogEntry {
  return { pid: partitionId(c.table, c.partition), author: c.author, seq: c.seq }
}

export function mergeResults(results: readonly ApplyResult[]): ChangesetOutcome {
  return results.some((r) => r === 'changed' || r === 'pending') ? 'changed' : 'unchanged'
}

/**
 * Signs this batch's local changes: one changeset per (table, partition), in write order, split
 * past MAX_CHANGESET_ROWS rows or MAX_CHANGESET_BYTES. Returns the log entries to commit and this
 * peer's new last sequence number per partition.
 */
export async function signLocalChanges(core: StoreCore, changes: readonly LocalChange[]): Promise<{ logs: PendingLog[]; ownSeqs: Map<string, number> }> {
  const signer = core.signer
  const logs: PendingLog[] = []
  const ownSeqs = new Map<string, number>()
  if (signer === null || changes.length === 0) return { logs, ownSeqs }
  const groups = new Map<string, LocalChange[][]>()
  /** Estimated bytes of each partition's last chunk. */
  const filled = new Map<string, number>()
  for (const change of changes) {
    const pid = partitionId(change.table, change.partition)
    let chunks = groups.get(pid)
    if (chunks === undefined) groups.set(pid, (chunks = [[]]))
    let last = chunks[chunks.length - 1]!
    const size = change.delta.length + change.key.length + 8
    let bytes = filled.get(pid) ?? 0
    if (last.length >= MAX_CHANGESET_ROWS || (last.length > 0 && bytes + size > MAX_CHANGESET_BYTES - 1024)) {
      chunks.push((last = []))
      bytes = 0
    }
    last.push(change)
    filled.set(pid, bytes + size)
  }
  for (const [pid, chunks] of groups) {
    let seq = core.changeLog.lastOwnSeq(pid)
    for (const chunk of chunks) {
      seq++
      const first = chunk[0]!
      const signed = await signer.sign({ mesh: signer.mesh, author: signer.author, table: first.table, partition: first.partition, seq, rows: chunk.map((c) => ({ key: c.key, delta: c.delta })) })
      const ref: ChangesetRef = { author: signer.author, seq, bytes: signed.bytes }
      for (const c of chunk) c.attach(ref)
      logs.push({ entry: { pid, author: signer.author, seq }, bytes: signed.bytes })
    }
    ownSeqs.set(pid, seq)
  }
  return { logs, ownSeqs }
}
