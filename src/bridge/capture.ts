import type { BatchOp } from '../shoal.js'
import { normalizeKeyValue, type ColumnKind, type ResolvedSchema } from '../table/schema.js'
import type { CapturedChange } from './dialect.js'
import { SqlValueError } from './errors.js'
import { fromSqlValue } from './types.js'

/*
 * Captured SQL changes → Shoal writes (pure). One change becomes:
 *   I  put of its register/text columns (a new row, or a new life of a deleted one), then one
 *      increment per non-zero counter (counters are captured as increments, so concurrent sales
 *      at two stores add up)
 *   U  update of the changed register/text columns, increments for changed counters
 *   D  delete
 *   S  put of every column, counters as absolute values (initial load: "the row is like this")
 *   C  update of the added columns, absolute (ADD COLUMN backfill)
 * Columns the Shoal schema does not know are reported, so the bridge can refresh the schema.
 */

export interface ConvertedChange {
  change: CapturedChange
  /** The Shoal row key. */
  key: string
  ops: BatchOp[]
}

export interface CaptureRefusal {
  change: CapturedChange
  reason: string
}

export interface Converted {
  converted: ConvertedChange[]
  refused: CaptureRefusal[]
  /** Columns present in captured data that the Shoal schema lacks. */
  unknownColumns: Set<string>
}

export function convertChange(schema: ResolvedSchema, change: CapturedChange, jsonAsText: boolean, unknown: Set<string>): ConvertedChange {
  const where = (column: string) => `SQL table '${change.table}', row ${JSON.stringify(change.pk)}, column '${column}'`
  const keyKind = schema.columns[schema.primaryKey]!
  let key: string
  try {
    key = normalizeKeyValue(`primary key of SQL table '${change.table}'`, keyKind, change.pk)
  } catch (error) {
    throw new SqlValueError((error as Error).message)
  }
  const table = schema.name
  if (change.op === 'D') return { change, key, ops: [{ op: 'delete', table, key }] }
  const values: Record<string, unknown> = {}
  const increments: Array<{ column: string; by: number }> = []
  const relative = change.op === 'I' || change.op === 'U'
  for (const [column, raw] of Object.entries(change.data)) {
    const kind: ColumnKind | undefined = schema.columns[column]
    if (kind === undefined) {
      unknown.add(column)
      continue
    }
    if (column === schema.primaryKey) {
      if (change.op === 'U') continue
      values[column] = fromSqlValue(keyKind, raw, where(column), jsonAsText)
      continue
    }
    if (column === schema.partitionBy && change.op === 'U') {
      throw new SqlValueError(`${where(column)}: the partition column cannot change (the row stays in its partition); the SQL row is set back to Shoal's`)
    }
    const value = fromSqlValue(kind, raw, where(column), jsonAsText)
    if (kind === 'counter' && relative) {
      if (value !== 0) increments.push({ column, by: value as number })
      continue
    }
    values[column] = value
  }
  const ops: BatchOp[] = []
  if (change.op === 'I' || change.op === 'S') {
    ops.push({ op: 'put', table, key, values })
  } else if (Object.keys(values).length > 0) {
    ops.push({ op: 'update', table, key, values })
  }
  for (const { column, by } of increments) ops.push({ op: 'increment', table, key, column, by })
  return { change, key, ops }
}

/** Ids as [first, last] runs of consecutive ids: a bookmark of a 1,000-change batch stays a few bytes. */
export function idRanges(ids: readonly number[]): Array<[number, number]> {
  const sorted = [...ids].sort((a, b) => a - b)
  const out: Array<[number, number]> = []
  for (const id of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && id === last[1] + 1) last[1] = id
    else if (last === undefined || id > last[1]) out.push([id, id])
  }
  return out
}

/** Most ids a bookmark lists when it is read back (a bookmark is bounded; a corrupt one is refused). */
export const MAX_BOOKMARK_IDS = 100_000

export function idsOfRanges(ranges: ReadonlyArray<readonly [number, number]>): number[] {
  const out: number[] = []
  for (const [first, last] of ranges) {
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first || out.length + (last - first) > MAX_BOOKMARK_IDS) {
      throw new SqlValueError('the capture bookmark is malformed')
    }
    for (let id = first; id <= last; id++) out.push(id)
  }
  return out
}
