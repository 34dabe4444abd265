import type { Shoal } from '../shoal.js'
import { CATALOG_SCHEMA, CATALOG_TABLE } from '../table/catalog.js'
import type { ResolvedSchema } from '../table/schema.js'
import { truncatedChildren, type SyncReplica } from './replica.js'
import { NODE_HASH_BYTES, type CarrySpec, type PartitionRoot, type RangeCursor, type RowBytes } from './sync-messages.js'

/** A Shoal database seen as an anti-entropy replica. `carries`: table → the only partitions taken (see carriesPartition). */
export class StoreReplica implements SyncReplica {
  private readonly spec: CarrySpec

  constructor(
    private readonly db: Shoal,
    carries: Readonly<Record<string, readonly string[]>> = {},
  ) {
    this.spec = Object.fromEntries(Object.entries(carries).map(([t, ps]) => [t, [...ps]]))
  }

  carrySpec(): CarrySpec {
    return this.spec
  }

  roots(): PartitionRoot[] {
    const out: PartitionRoot[] = []
    for (const table of [CATALOG_TABLE, ...this.db.tables().map((t) => t.name)]) {
      for (const p of this.db.store.partitions(table)) out.push({ table, partition: p.partition, root: p.digest, rows: p.rows })
    }
    return out
  }

  knowsTable(table: string): boolean {
    return this.schemaOf(table) !== undefined
  }

  async children(table: string, partition: string, level: number, nodes: readonly number[]): Promise<Uint8Array> {
    const tree = await this.db.store.digestTree(table, partition)
    return truncatedChildren(tree, level, nodes)
  }

  async leafRows(table: string, partition: string, leaves: readonly number[]): Promise<Array<{ leaf: number; key: string; hash: Uint8Array }>> {
    const lists = await Promise.all(leaves.map((leaf) => this.db.store.leafRows(table, partition, leaf)))
    return lists.flatMap((rows, i) => rows.map((r) => ({ leaf: leaves[i]!, key: r.key, hash: r.rowHash.slice(0, NODE_HASH_BYTES) })))
  }

  async range(table: string, partition: string, from: number, to: number, after: RangeCursor | null, maxBytes: number): Promise<{ rows: RowBytes[]; next: RangeCursor | null }> {
    const page = await this.db.store.rowRange(table, partition, from, to, after, maxBytes)
    return { rows: page.rows.map((r) => ({ key: r.key, bytes: r.doc })), next: page.next }
  }

  async fetch(table: string, partition: string, items: ReadonlyArray<{ key: string; version: Uint8Array | null }>): Promise<Array<{ key: string; bytes: Uint8Array | null; version: Uint8Array | null }>> {
    const whole = items.filter((i) => i.version === null).map((i) => i.key)
    const docs = whole.length === 0 ? [] : await this.db.store.encodedRows(table, partition, whole)
    const byKey = new Map(whole.map((k, i) => [k, docs[i] ?? null]))
    const schema = this.schemaOf(table)
    return Promise.all(
      items.map(async (item) => {
        if (item.version === null) return { key: item.key, bytes: byKey.get(item.key) ?? null, version: null }
        if (schema === undefined) return { key: item.key, bytes: null, version: null }
        const since = await this.db.store.rowSince(schema, partition, item.key, item.version)
        return { key: item.key, bytes: since?.delta ?? null, version: since?.version ?? null }
      }),
    )
  }

  async version(table: string, partition: string, key: string): Promise<Uint8Array | null> {
    const schema = this.schemaOf(table)
    if (schema === undefined) return null
    return (await this.db.store.rowSince(schema, partition, key, null))?.version ?? null
  }

  async deltaSince(table: string, partition: string, key: string, version: Uint8Array): Promise<Uint8Array | null> {
    const schema = this.schemaOf(table)
    if (schema === undefined) return null
    return (await this.db.store.rowSince(schema, partition, key, version))?.delta ?? null
  }

  async apply(table: string, partition: string, rows: readonly RowBytes[], from: string): Promise<{ changed: number; refused: number; errors: string[] }> {
    // All at once: the store's group commit makes them one durable batch.
    const results = await Promise.allSettled(rows.map((r) => this.db.applyRemoteDelta(table, partition, r.key, r.bytes, from)))
    let changed = 0
    let refused = 0
    const errors: string[] = []
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        if (r.value === 'changed') changed++
      } else {
        refused++
        errors.push(`row '${rows[i]!.key}' refused: ${(r.reason as Error).message}`)
      }
    })
    return { changed, refused, errors }
  }

  private schemaOf(table: string): ResolvedSchema | undefined {
    if (table === CATALOG_TABLE) return CATALOG_SCHEMA
    return this.db.tables().find((t) => t.name === table)
  }
}
