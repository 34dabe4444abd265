import { sha256 } from '@noble/hashes/sha2.js'
import { decode, encode } from 'cborg'
import type { RangeCursor, RowBytes } from '../../sync/sync-messages.js'
import type { SyncReplica } from '../../sync/replica.js'
import type { RowEngine } from '../../table/engine.js'
import { toHex } from '../../table/hash.js'
import type { ResolvedSchema } from '../../table/schema.js'
import { signChangeset, verifyChangeset, type Changeset } from '../../trust/changeset.js'
import { rowId } from '../core/checker.js'
import type { MemoryReplica } from './memory-replica.js'
import type { PeerTrust } from './model-mesh.js'

/*
 * A model peer of a mesh with roles replicates signed changesets, never bare deltas (docs/trust.md):
 * each local write becomes a changeset signed by its author; gossip carries changesets as they
 * are; anti-entropy (the real reconciler, over the digest trees) ships, for each row that differs,
 * the changesets that built it. A receiver checks each one — the author's signature, that the
 * rules let the author write that (table, partition), that every operation in its deltas is the
 * author's own — whoever delivered it, and refuses it otherwise. Each changeset is kept in the log
 * of the rows it touches, so honest peers relay what they accepted and nothing else.
 */

export type Acceptance = 'accepted' | 'known' | 'refused'

/** Most changesets one anti-entropy row may carry (a row's whole history in a run stays far below). */
const MAX_ROW_CHANGESETS = 100_000

export class ChangesetLog {
  /** Refusals, each delivery counted (as a real peer's refusal counter would). */
  refusals = 0
  /** Changeset id (hash of its bytes) → accepted. */
  private readonly accepted = new Set<string>()
  private readonly refused = new Set<string>()
  /** row id → the changesets that touched it, in the order taken in. */
  private readonly rows = new Map<string, Uint8Array[]>()
  private readonly seqs = new Map<string, number>()

  constructor(
    private readonly trust: PeerTrust,
    private readonly replica: MemoryReplica,
    private readonly engineOf: (table: string) => RowEngine,
  ) {}

  /** Signs a local write's delta as a changeset of its own, logs it and returns its bytes (for gossip). */
  async record(table: string, partition: string, key: string, delta: Uint8Array): Promise<Uint8Array> {
    const part = `${table}\u0000${partition}`
    const seq = (this.seqs.get(part) ?? 0) + 1
    this.seqs.set(part, seq)
    const { bytes } = await signChangeset({ mesh: this.trust.mesh, author: this.trust.author, table, partition, seq, rows: [{ key, delta }] }, this.trust.key)
    this.accepted.add(idOf(bytes))
    this.log(table, partition, [key], bytes)
    return bytes
  }

  /**
   * Checks a changeset delivered by `from` for (table, partition) and merges its deltas if its
   * author may write them. Refused: forged, of another mesh or partition, by a non-member, outside
   * the author's rights, or holding operations of someone else.
   */
  async accept(bytes: Uint8Array, table: string, partition: string, from: string): Promise<Acceptance> {
    const id = idOf(bytes)
    if (this.accepted.has(id)) return 'known'
    if (this.refused.has(id)) {
      this.refusals++
      return 'refused'
    }
    let changeset: Changeset
    try {
      changeset = await verifyChangeset(bytes, this.trust.mesh)
      if (changeset.table !== table || changeset.partition !== partition) throw new Error('changeset of another partition than it came for')
      if (this.trust.enforced) await this.checkRights(changeset)
      for (const row of changeset.rows) this.replica.merge(table, partition, row.key, row.delta, from)
    } catch {
      this.refused.add(id)
      this.refusals++
      return 'refused'
    }
    this.accepted.add(id)
    this.log(table, partition, changeset.rows.map((r) => r.key), bytes)
    return 'accepted'
  }

  /** The changesets of a row, encoded as one anti-entropy row payload. */
  rowPayload(table: string, partition: string, key: string): Uint8Array | null {
    const list = this.rows.get(rowId(table, partition, key))
    return list === undefined ? null : encode(list)
  }

  private async checkRights(c: Changeset): Promise<void> {
    const membership = this.trust.membership
    if (membership.member(c.author) === null) {
      const admission = this.trust.admissionOf(c.author)
      if (admission === undefined) throw new Error(`author ${c.author} is not admitted`)
      await membership.admit(c.author, admission)
    }
    if (!membership.mayWrite(c.author, c.table, c.partition)) throw new Error(`author may not write ${c.table}/${c.partition}`)
    const engine = this.engineOf(c.table)
    for (const row of c.rows) engine.checkAuthor(row.delta, c.author)
  }

  private log(table: string, partition: string, keys: readonly string[], bytes: Uint8Array): void {
    for (const key of new Set(keys)) {
      const id = rowId(table, partition, key)
      const list = this.rows.get(id)
      if (list === undefined) this.rows.set(id, [bytes])
      else list.push(bytes)
    }
  }
}

function idOf(bytes: Uint8Array): string {
  return toHex(sha256(bytes))
}

/** Decodes an anti-entropy row payload: the list of changesets of one row. */
function changesetsOf(bytes: Uint8Array): Uint8Array[] {
  const list: unknown = decode(bytes)
  if (!Array.isArray(list) || list.length > MAX_ROW_CHANGESETS || !list.every((c) => c instanceof Uint8Array)) throw new Error('not a list of changesets')
  return list as Uint8Array[]
}

/**
 * The SyncReplica of a model peer with roles: digest trees and rows from its MemoryReplica (so the
 * reconciler finds the differing rows as it always does), row payloads as changeset lists.
 */
export class TrustedReplica implements SyncReplica {
  constructor(
    private readonly replica: MemoryReplica,
    private readonly history: ChangesetLog,
  ) {}

  carries(): ReturnType<SyncReplica['carries']> {
    return this.replica.carries()
  }

  holds(table: string, partition: string): boolean {
    return this.replica.holds(table, partition)
  }

  roots(): ReturnType<SyncReplica['roots']> {
    return this.replica.roots()
  }

  partitionRoot(table: string, partition: string): ReturnType<SyncReplica['partitionRoot']> {
    return this.replica.partitionRoot(table, partition)
  }

  knowsTable(table: string): boolean {
    return this.replica.knowsTable(table)
  }

  children(table: string, partition: string, level: number, nodes: readonly number[]): Promise<Uint8Array> {
    return this.replica.children(table, partition, level, nodes)
  }

  leafRows(table: string, partition: string, leaves: readonly number[]): ReturnType<SyncReplica['leafRows']> {
    return this.replica.leafRows(table, partition, leaves)
  }

  async range(table: string, partition: string, from: number, to: number, after: RangeCursor | null, maxBytes: number): Promise<{ rows: RowBytes[]; next: RangeCursor | null }> {
    const page = await this.replica.range(table, partition, from, to, after, maxBytes)
    return { rows: page.rows.flatMap((r) => this.payload(table, partition, r.key)), next: page.next }
  }

  async fetch(table: string, partition: string, items: ReadonlyArray<{ key: string; version: Uint8Array | null }>): ReturnType<SyncReplica['fetch']> {
    // Versions as the replica has them (the reconciler sends back what the asker lacks by them); payloads as changesets.
    const rows = await this.replica.fetch(table, partition, items)
    return rows.map((r) => ({ key: r.key, bytes: r.bytes === null && r.version === null ? null : this.history.rowPayload(table, partition, r.key), version: r.version }))
  }

  versions(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
    return this.replica.versions(table, partition, keys)
  }

  async deltaSince(table: string, partition: string, key: string): Promise<Uint8Array | null> {
    return this.history.rowPayload(table, partition, key)
  }

  async apply(table: string, partition: string, rows: readonly RowBytes[], from: string): Promise<{ changed: number; refused: number }> {
    if (!this.replica.knowsTable(table) || !this.replica.takes(table, partition)) return { changed: 0, refused: rows.length }
    let changed = 0
    let refused = 0
    for (const row of rows) {
      let list: Uint8Array[]
      try {
        list = changesetsOf(row.bytes)
      } catch {
        refused++
        continue
      }
      const [before] = await this.replica.versions(table, partition, [row.key])
      let rowRefused = false
      for (const bytes of list) if ((await this.history.accept(bytes, table, partition, from)) === 'refused') rowRefused = true
      if (rowRefused) refused++
      const [after] = await this.replica.versions(table, partition, [row.key])
      if (after != null && (before == null || toHex(before) !== toHex(after))) changed++
    }
    return { changed, refused }
  }

  private payload(table: string, partition: string, key: string): RowBytes[] {
    const bytes = this.history.rowPayload(table, partition, key)
    return bytes === null ? [] : [{ key, bytes }]
  }
}

/** The engine of each table, for author checks. */
export function enginesByTable(tables: readonly ResolvedSchema[], engineFor: (name: ResolvedSchema['engine']) => RowEngine): (table: string) => RowEngine {
  const byName = new Map(tables.map((t) => [t.name, engineFor(t.engine)]))
  return (table) => {
    const engine = byName.get(table)
    if (engine === undefined) throw new Error(`table '${table}' is not part of this simulation`)
    return engine
  }
}
