import { StoreCorruptError } from '../errors.js'
import { leafOf, ZERO_DIGEST } from '../table/digest-tree.js'
import { equalBytes, isZeroBytes, xorBytes } from '../table/hash.js'
import { displayId, parseRowId, partitionId } from '../table/ids.js'
import { checkRow } from '../table/row-check.js'
import type { ResolvedSchema } from '../table/schema.js'
import type { StoreCore } from './core.js'
import { bucketKey, decodeRecord, leafKey, SEP } from './layout.js'

export interface CheckReport {
  rows: number
  /** Empty when the store is consistent. */
  problems: string[]
}

/**
 * Verifies the whole store against itself: every row decodes and passes the row check, its stored
 * digest matches its document, and the digest leaves, roots, bucket entries and live counts agree
 * with the rows. Reads everything; meant for `shoal check` and tests, not for the hot path.
 */
export async function checkStore(core: StoreCore, schemaOf: (table: string) => ResolvedSchema | undefined): Promise<CheckReport> {
  const problems: string[] = []
  const leaves = new Map<string, Uint8Array>()
  const counts = new Map<string, number>()
  const buckets = new Map<string, Uint8Array>()
  let rows = 0
  for await (const [id, bytes] of core.levels.rows.iterator()) {
    rows++
    const { table, partition, key } = parseRowId(id)
    const where = `row ${table}/${partition}/${key}`
    const schema = schemaOf(table)
    if (schema === undefined) {
      problems.push(`${where}: table '${table}' is not in the catalog`)
      continue
    }
    try {
      const record = decodeRecord(bytes, id)
      const doc = core.decodeDoc(schema, key, id, record.doc)
      try {
        const rowHash = doc.rowHash(key)
        if (doc.alive !== record.alive) problems.push(`${where}: stored alive flag ${record.alive} but document says ${doc.alive}`)
        if (!equalBytes(rowHash, record.rowHash)) problems.push(`${where}: stored digest does not match its document`)
        try {
          checkRow(doc, schema, key, partition)
        } catch (error) {
          problems.push(`${where}: ${(error as Error).message}`)
        }
        const lk = leafKey(table, partition, leafOf(key))
        leaves.set(lk, xorBytes(leaves.get(lk) ?? ZERO_DIGEST, rowHash))
        buckets.set(bucketKey(table, partition, leafOf(key), key), rowHash)
        const pid = partitionId(table, partition)
        counts.set(pid, (counts.get(pid) ?? 0) + (doc.alive ? 1 : 0))
      } finally {
        doc.dispose()
      }
    } catch (error) {
      problems.push(`${where}: ${error instanceof StoreCorruptError ? error.message : (error as Error).message}`)
    }
  }
  const storedLeaves = new Map<string, Uint8Array>()
  for await (const [k, v] of core.levels.leaves.iterator()) storedLeaves.set(k, v)
  for (const [k, v] of leaves) {
    if (isZeroBytes(v)) continue
    const stored = storedLeaves.get(k)
    if (stored === undefined || !equalBytes(stored, v)) problems.push(`digest leaf ${displayId(k)} does not match its rows`)
  }
  for (const k of storedLeaves.keys()) if (!leaves.has(k)) problems.push(`digest leaf ${displayId(k)} has no rows`)
  const roots = new Map<string, Uint8Array>()
  for (const [k, v] of leaves) {
    const pid = k.slice(0, k.lastIndexOf(SEP))
    roots.set(pid, xorBytes(roots.get(pid) ?? ZERO_DIGEST, v))
  }
  for (const pid of new Set([...roots.keys(), ...core.digests.partitionIds()])) {
    if (!equalBytes(roots.get(pid) ?? ZERO_DIGEST, core.digests.root(pid))) problems.push(`digest root of ${displayId(pid)} does not match its rows`)
  }
  let bucketEntries = 0
  for await (const [k, v] of core.levels.buckets.iterator()) {
    bucketEntries++
    const expected = buckets.get(k)
    if (expected === undefined || !equalBytes(expected, v)) problems.push(`bucket entry ${displayId(k)} does not match its row`)
  }
  if (bucketEntries !== buckets.size) problems.push(`${buckets.size} rows but ${bucketEntries} bucket entries`)
  for (const [pid, n] of counts) {
    if (core.digests.liveCount(pid) !== n) problems.push(`partition ${displayId(pid)}: stored live count ${core.digests.liveCount(pid)}, rows say ${n}`)
  }
  return { rows, problems }
}
