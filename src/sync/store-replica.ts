import { ShoalError } from '../errors.js'
import type { ReplicaSource } from '../store/replica-source.js'
import type { ResolvedSchema } from '../table/schema.js'
import { isCarried, type Carries } from './carries.js'
import { truncatedChildren, type FeedReplica, type RefusalSink, type SyncReplica } from './replica.js'
import { NODE_HASH_BYTES, type PartitionRoot, type RangeCursor, type RowBytes } from './sync-messages.js'
import { CATALOG_TABLE } from '../table/catalog.js'
import { StoreChangesets } from './store-changesets.js'
import type { TrustGate } from './trust-gate.js'

export type { RefusalSink } from './replica.js'

/** A store seen as an anti-entropy replica, carrying what `carries` says; with a trust gate, a private mesh's (changesets). */
export class StoreReplica implements SyncReplica {
  private readonly carried: Carries
  readonly changesets?: StoreChangesets
  readonly feed?: FeedReplica

  constructor(
    private readonly source: ReplicaSource,
    carries: Carries = {},
    private readonly onRefused: RefusalSink = () => undefined,
    gate?: TrustGate,
  ) {
    this.carried = Object.fromEntries(Object.entries(carries).map(([t, ps]) => [t, [...ps]]))
    if (gate !== undefined) this.changesets = new StoreChangesets(source, gate, this.carried, onRefused)
    else this.feed = storeFeed(source)
  }

  carries(): Carries {
    return this.carried
  }

  holds(table: string, partition: string): boolean {
    return this.source.holds(table, partition)
  }

  roots(): PartitionRoot[] {
    const out: PartitionRoot[] = []
    for (const table of [CATALOG_TABLE, ...this.source.tables().map((t) => t.name)]) {
      for (const p of this.source.partitions(table)) out.push({ table, partition: p.partition, root: p.digest, rows: p.rows })
    }
    return out
  }

  partitionRoot(table: string, partition: string): PartitionRoot | undefined {
    const p = this.source.partition(table, partition)
    return p === undefined ? undefined : { table, partition, root: p.digest, rows: p.rows }
  }

  knowsTable(table: string): boolean {
    return this.source.schema(table) !== undefined
  }

  async children(table: string, partition: string, level: number, nodes: readonly number[]): Promise<Uint8Array> {
    return truncatedChildren(await this.source.digestTree(table, partition), level, nodes)
  }

  async leafRows(table: string, partition: string, leaves: readonly number[]): Promise<Array<{ leaf: number; key: string; hash: Uint8Array }>> {
    const rows = await this.source.leafRows(table, partition, leaves)
    return rows.map((r) => ({ leaf: r.leaf, key: r.key, hash: r.rowHash.slice(0, NODE_HASH_BYTES) }))
  }

  async range(table: string, partition: string, from: number, to: number, after: RangeCursor | null, maxBytes: number): Promise<{ rows: RowBytes[]; next: RangeCursor | null }> {
    const page = await this.source.rowRange(table, partition, from, to, after, maxBytes)
    return { rows: page.rows.map((r) => ({ key: r.key, bytes: r.doc })), next: page.next }
  }

  async fetch(table: string, partition: string, items: ReadonlyArray<{ key: string; version: Uint8Array | null }>): Promise<Array<{ key: string; bytes: Uint8Array | null; version: Uint8Array | null }>> {
    const whole = items.filter((i) => i.version === null).map((i) => i.key)
    const docs = whole.length === 0 ? [] : await this.source.encodedRows(table, partition, whole)
    const byKey = new Map(whole.map((k, i) => [k, docs[i] ?? null]))
    const schema = this.source.schema(table)
    const asked = items.filter((i) => i.version !== null)
    const since = schema === undefined || asked.length === 0 ? [] : await this.source.rowsSince(schema, partition, asked.map((i) => ({ key: i.key, since: i.version })))
    const answers = new Map(asked.map((item, i) => [item.key, since[i] ?? null]))
    return items.map((item) => {
      if (item.version === null) return { key: item.key, bytes: byKey.get(item.key) ?? null, version: null }
      const row = answers.get(item.key) ?? null
      // Our version only when the asker may hold something we lack: it sends that back.
      return { key: item.key, bytes: row?.delta ?? null, version: row === null || row.holdsAll ? null : row.version }
    })
  }

  async versions(table: string, partition: string, keys: readonly string[]): Promise<Array<Uint8Array | null>> {
    const schema = this.source.schema(table)
    if (schema === undefined) return keys.map(() => null)
    return (await this.source.rowsSince(schema, partition, keys.map((key) => ({ key, since: null })))).map((row) => row?.version ?? null)
  }

  async deltaSince(table: string, partition: string, key: string, version: Uint8Array): Promise<Uint8Array | null> {
    const schema: ResolvedSchema | undefined = this.source.schema(table)
    if (schema === undefined) return null
    const [row] = await this.source.rowsSince(schema, partition, [{ key, since: version }])
    return row?.delta ?? null
  }

  async apply(table: string, partition: string, rows: readonly RowBytes[], from: string): Promise<{ changed: number; refused: number }> {
    if (!isCarried(this.carried, table, partition, (t, p) => this.source.holds(t, p))) {
      this.onRefused('NOT_CARRIED', `${rows.length} rows of ${table}/${JSON.stringify(partition)} from ${from} refused: that partition is not carried here`, from)
      return { changed: 0, refused: rows.length }
    }
    // All at once: the store's group commit makes them one durable batch.
    const results = await this.source.applyRemoteRows(table, partition, rows, from)
    let changed = 0
    let refused = 0
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        if (r.value === 'changed') changed++
      } else {
        refused++
        const reason = r.reason instanceof ShoalError ? r.reason.code : 'INTERNAL'
        this.onRefused(reason, `row ${JSON.stringify(rows[i]!.key)} of ${table}/${JSON.stringify(partition)} from ${from} refused: ${(r.reason as Error).message}`, from)
      }
    })
    return { changed, refused }
  }
}

/** A store's change feed as anti-entropy uses it. */
function storeFeed(source: ReplicaSource): FeedReplica {
  return {
    epoch: () => source.feedEpoch(),
    seq: (table, partition) => source.feedSeq(table, partition),
    changedSince: (table, partition, after, limit) => source.changedSince(table, partition, after, limit),
    hashes: async (table, partition, keys) => (await source.rowHashes(table, partition, keys)).map((h) => (h === null ? null : h.slice(0, NODE_HASH_BYTES))),
    mark: (peer, table, partition) => source.feedMark(peer, table, partition),
    setMark: (peer, table, partition, mark) => source.setFeedMark(peer, table, partition, mark),
  }
}
