import type { ResolvedSchema } from '../table/schema.js'
import { keyColumnValue, normalizeKeyValue } from '../table/schema.js'
import type { MirrorSpec } from './dialect.js'
import { fromSqlValue, sameValue, toSqlValue, type DialectName } from './types.js'

/*
 * Write-back decisions (pure): given the merged Shoal rows and the SQL rows as they are now, what
 * to write. A row is written only when it differs, so a repeated delivery, a replay after a
 * crash, or a change that came from this very SQL row writes nothing: write-back is idempotent.
 */

/** The Shoal side of one row: null = never stored here; alive false = deleted. */
export type ShoalRow = { alive: boolean; values: Readonly<Record<string, unknown>> } | null

export interface WritePlan {
  upserts: Array<{ key: string; row: Record<string, unknown> }>
  deletes: Array<{ key: string; native: unknown }>
  /** Rows already equal (nothing to write). */
  unchanged: number
}

/** The Shoal key of a SQL row as read back (readRows / lockRows). */
export function keyOfSqlRow(schema: ResolvedSchema, row: Readonly<Record<string, unknown>>): string | null {
  try {
    return normalizeKeyValue('key', schema.columns[schema.primaryKey]!, row[schema.primaryKey])
  } catch {
    return null
  }
}

/** The native SQL value of a Shoal key (number keys bind as numbers). */
export function nativeKey(schema: ResolvedSchema, key: string): unknown {
  return keyColumnValue(schema.columns[schema.primaryKey]!, key)
}

/** Whether the SQL row already holds the Shoal row's values in every mirrored column. */
export function sameRow(spec: MirrorSpec, shoal: Readonly<Record<string, unknown>>, sql: Readonly<Record<string, unknown>>, jsonAsText: boolean): boolean {
  for (const { name, kind } of spec.columns) {
    let current: unknown
    try {
      current = fromSqlValue(kind, sql[name], name, jsonAsText)
    } catch {
      return false
    }
    const wanted = shoal[name] ?? (kind === 'counter' ? 0 : kind === 'text' ? '' : null)
    if (!sameValue(kind, wanted, current)) return false
  }
  return true
}

export function planWrites(
  dialect: DialectName,
  spec: MirrorSpec,
  schema: ResolvedSchema,
  wanted: ReadonlyMap<string, ShoalRow>,
  current: ReadonlyMap<string, Readonly<Record<string, unknown>>>,
  jsonAsText: boolean,
): WritePlan {
  const plan: WritePlan = { upserts: [], deletes: [], unchanged: 0 }
  for (const [key, shoal] of wanted) {
    const sql = current.get(key)
    if (shoal === null) {
      // Never stored here (e.g. its capture was refused): nothing to mirror.
      plan.unchanged++
      continue
    }
    if (!shoal.alive) {
      if (sql === undefined) plan.unchanged++
      else plan.deletes.push({ key, native: nativeKey(schema, key) })
      continue
    }
    if (sql !== undefined && sameRow(spec, shoal.values, sql, jsonAsText)) {
      plan.unchanged++
      continue
    }
    const row: Record<string, unknown> = {}
    for (const { name, kind } of spec.columns) row[name] = name === spec.primaryKey ? nativeKey(schema, key) : toSqlValue(dialect, kind, shoal.values[name])
    plan.upserts.push({ key, row })
  }
  return plan
}
