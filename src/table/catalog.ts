import type { ColumnKind, ResolvedSchema } from './schema.js'
import { validateSchema } from './schema.js'

/*
 * Table schemas are rows of a system table, so they replicate like any data. One row per
 * table, one register per column ("col:<name>" → kind): adding different columns on two peers
 * at once merges into a table with both.
 */

export const CATALOG_TABLE = '_tables'

export const CATALOG_SCHEMA: ResolvedSchema = {
  name: CATALOG_TABLE,
  primaryKey: 'name',
  partitionBy: null,
  engine: 'yjs',
  columns: { name: 'string', primaryKey: 'string', partitionBy: 'json', engine: 'string' },
}

const COLUMN_PREFIX = 'col:'

export function schemaToCatalogValues(schema: ResolvedSchema): Record<string, unknown> {
  const values: Record<string, unknown> = {
    name: schema.name,
    primaryKey: schema.primaryKey,
    partitionBy: schema.partitionBy,
    engine: schema.engine,
  }
  for (const [column, kind] of Object.entries(schema.columns)) values[COLUMN_PREFIX + column] = kind
  return values
}

/** Reads a catalog row back into a schema; throws SchemaError if the row is not a valid schema. */
export function catalogValuesToSchema(values: Readonly<Record<string, unknown>>): ResolvedSchema {
  const columns: Record<string, ColumnKind> = {}
  for (const [key, value] of Object.entries(values)) {
    if (key.startsWith(COLUMN_PREFIX)) columns[key.slice(COLUMN_PREFIX.length)] = value as ColumnKind
  }
  return validateSchema({
    name: values.name,
    primaryKey: values.primaryKey,
    partitionBy: values.partitionBy ?? null,
    engine: values.engine,
    columns,
  })
}
