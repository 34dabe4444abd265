import type { RowState } from '../table/row.js'
import type { ResolvedSchema } from '../table/schema.js'
import type { StoreCore } from './core.js'
import { decodeRecord, partitionPrefix, prefixEnd, rowKey, SEP } from './layout.js'

export interface StoredRow {
  partition: string
  key: string
  state: RowState
}

const DELETED: RowState = { alive: false, life: 0, values: {} }

/** A row's partition: '' for unpartitioned tables, the given one, or the key index's answer (null: stored nowhere). */
async function partitionOf(core: StoreCore, schema: ResolvedSchema, key: string, partition: string | null): Promise<string | null> {
  if (schema.partitionBy === null) return ''
  return partition ?? (await core.keyIndex.find(schema.name, key))
}

/** The committed state of a row, or null if it was never stored. */
export async function readRow(core: StoreCore, schema: ResolvedSchema, key: string, partition: string | null): Promise<StoredRow | null> {
  const p = await partitionOf(core, schema, key, partition)
  if (p === null) return null
  const id = rowKey(schema.name, p, key)
  await core.settled(id)
  const cached = core.cache.get(id)
  if (cached !== undefined) return { partition: p, key, state: cached.doc.state(schema) }
  const seq = core.commitSeq
  const bytes = await core.levels.rows.get(id)
  if (bytes === undefined) return null
  const record = decodeRecord(bytes, id)
  if (!record.alive) return { partition: p, key, state: DELETED }
  const live = core.decodeLive(schema, key, id, bytes)
  const state = live.doc.state(schema)
  if (seq === core.commitSeq && !core.inFlight.has(id) && core.cache.get(id) === undefined) core.cache.set(id, live)
  else live.dispose()
  return { partition: p, key, state }
}

/** Live rows in key order, from one partition or (partition null) all of them. */
export async function scanRows(
  core: StoreCore,
  schema: ResolvedSchema,
  partition: string | null,
  after: { partition: string; key: string } | null,
  limit: number,
): Promise<StoredRow[]> {
  const prefix = partition === null ? `${schema.name}${SEP}` : partitionPrefix(schema.name, partition)
  const gt = after === null ? undefined : rowKey(schema.name, after.partition, after.key)
  const out: StoredRow[] = []
  const iterator = core.levels.rows.iterator({ ...(gt === undefined ? { gte: prefix } : { gt }), lt: prefixEnd(prefix) })
  try {
    for await (const [id, bytes] of iterator) {
      const record = decodeRecord(bytes, id)
      if (!record.alive) continue
      const rest = id.slice(schema.name.length + 1)
      const cut = rest.indexOf(SEP)
      const p = rest.slice(0, cut)
      const key = rest.slice(cut + 1)
      const cached = core.inFlight.has(id) ? undefined : core.cache.get(id)
      let state: RowState
      if (cached !== undefined) {
        state = cached.doc.state(schema)
      } else {
        // Scans do not fill the cache: one pass over a big table must not evict the hot rows.
        const doc = core.decodeDoc(schema, key, id, record.doc)
        state = doc.state(schema)
        doc.dispose()
      }
      out.push({ partition: p, key, state })
      if (out.length >= limit) break
    }
  } finally {
    await iterator.close()
  }
  return out
}

/** Losing values of concurrent register writes (Automerge tables), per column; null if the row is not stored. */
export async function readConflicts(core: StoreCore, schema: ResolvedSchema, key: string, partition: string | null): Promise<Record<string, unknown[]> | null> {
  const p = await partitionOf(core, schema, key, partition)
  if (p === null) return null
  const id = rowKey(schema.name, p, key)
  await core.settled(id)
  const bytes = await core.levels.rows.get(id)
  if (bytes === undefined) return null
  const live = core.decodeLive(schema, key, id, bytes)
  try {
    return live.doc.conflicts()
  } finally {
    live.dispose()
  }
}
