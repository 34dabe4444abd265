import { validateSchema, type ColumnKind, type ResolvedSchema } from '../table/schema.js'
import type { BridgeTableConfig } from './config.js'
import type { MirrorSpec, SqlColumnInfo } from './dialect.js'
import { BridgeConfigError, SqlSchemaChangeError, SqlTypeError } from './errors.js'
import { kindsForSqlType, sqlTypeForKind, type DialectName } from './types.js'

/*
 * How one SQL table and one Shoal table line up (pure: no database, no store). Decided at start
 * and again after every schema change on either side:
 *   - the SQL table is missing: it is created from the Shoal schema (a new store's empty database);
 *   - the Shoal table is missing: its schema is derived from the SQL columns (+ the config's
 *     counters, text, json, partitionBy, engine; without one, the columns engine, or yjs when a
 *     column is declared text);
 *   - both exist: SQL columns Shoal lacks are added to the Shoal schema, Shoal columns SQL lacks
 *     are added to the SQL table (ADD COLUMN, both ways); a column whose SQL type cannot hold its
 *     Shoal kind, a different key, or a column gone from SQL is refused with a message naming it.
 */

export interface MirrorPlan {
  spec: MirrorSpec
  /** The Shoal schema the table must have (defineTable extends the current one to it). */
  schema: ResolvedSchema
  counters: string[]
  /** Create the SQL table with these columns (it does not exist yet). */
  createSql: Array<{ name: string; sqlType: string }> | null
  /** Add these columns to the SQL table. */
  addSql: Array<{ name: string; sqlType: string }>
  /** SQL columns the Shoal schema did not have (their values must be captured once). */
  newInShoal: string[]
}

function declaredKind(config: BridgeTableConfig, column: string): ColumnKind | null {
  if (config.counters.includes(column)) return 'counter'
  if (config.text.includes(column)) return 'text'
  if (config.json.includes(column)) return 'json'
  return null
}

function kindOf(dialect: DialectName, config: BridgeTableConfig, column: SqlColumnInfo): ColumnKind {
  const kinds = kindsForSqlType(dialect, column.type)
  if (kinds === null) {
    throw new SqlTypeError(
      config.sql,
      column.name,
      `SQL table '${config.sql}', column '${column.name}': type '${column.type}' has no Shoal column kind (binary, array and custom types are not mirrored); ` +
        `change the column to a supported type (README, "SQL bridge", type mapping) or mirror a view without it`,
    )
  }
  const declared = declaredKind(config, column.name)
  if (declared !== null && !kinds.includes(declared)) {
    throw new SqlTypeError(config.sql, column.name, `SQL table '${config.sql}', column '${column.name}': type '${column.type}' cannot be mirrored as ${declared} (it can be: ${kinds.join(', ')})`)
  }
  return declared ?? kinds[0]!
}

function checkKind(dialect: DialectName, config: BridgeTableConfig, column: SqlColumnInfo, kind: ColumnKind): void {
  const kinds = kindsForSqlType(dialect, column.type)
  if (kinds === null) kindOf(dialect, config, column)
  if (!kinds!.includes(kind)) {
    throw new SqlTypeError(
      config.sql,
      column.name,
      `SQL table '${config.sql}', column '${column.name}' is '${column.type}', which can mirror ${kinds!.join(' or ')}, but Shoal table '${config.table}' declares it ${kind}; ` +
        `change the SQL column's type or mirror another table`,
    )
  }
}

export function planMirror(dialect: DialectName, config: BridgeTableConfig, sql: readonly SqlColumnInfo[] | null, shoal: ResolvedSchema | null): MirrorPlan {
  const where = `SQL table '${config.sql}' ↔ Shoal table '${config.table}'`
  if (sql === null) {
    if (shoal === null) {
      throw new BridgeConfigError(`${where}: neither exists; create the SQL table, or define the Shoal table in the config's "tables" so the bridge can create the SQL table`)
    }
    const columns = Object.entries(shoal.columns).map(([name, kind]) => ({ name, sqlType: sqlTypeForKind(dialect, kind, name === shoal.primaryKey || name === shoal.partitionBy) }))
    return finish(config, shoal, columns, [], [])
  }
  const keys = sql.filter((c) => c.primaryKey)
  if (keys.length !== 1) {
    throw new BridgeConfigError(
      keys.length === 0
        ? `${where}: the SQL table has no primary key; the bridge mirrors rows by a single-column primary key (add one)`
        : `${where}: the SQL table's primary key has ${keys.length} columns (${keys.map((k) => k.name).join(', ')}); the bridge mirrors tables with a single-column primary key`,
    )
  }
  const pk = keys[0]!.name
  for (const c of sql) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(c.name)) throw new SqlTypeError(config.sql, c.name, `${where}: column name '${c.name}' is not a Shoal column name (a letter, then letters, digits or '_'); rename it`)
  }
  if (shoal === null) {
    const columns: Record<string, ColumnKind> = {}
    for (const c of sql) columns[c.name] = kindOf(dialect, config, c)
    let schema: ResolvedSchema
    try {
      // SQL columns are values, not collaborative text: unless a column is declared text, the rows
      // need no sequence CRDT, and the columns engine (a register or counter per cell) is the
      // fastest that merges them (bench/README.md, "Row path").
      const engine = config.engine ?? (Object.values(columns).includes('text') ? 'yjs' : 'columns')
      schema = validateSchema({ name: config.table, primaryKey: pk, partitionBy: config.partitionBy, engine, columns })
    } catch (error) {
      throw new BridgeConfigError(`${where}: the schema derived from the SQL table is invalid: ${(error as Error).message}`)
    }
    return finish(config, schema, null, [], [])
  }
  if (shoal.primaryKey !== pk) throw new BridgeConfigError(`${where}: the SQL primary key is '${pk}' but the Shoal table's is '${shoal.primaryKey}'; they must be the same column`)
  const columns: Record<string, ColumnKind> = { ...shoal.columns }
  const newInShoal: string[] = []
  for (const c of sql) {
    const kind = shoal.columns[c.name]
    if (kind === undefined) {
      columns[c.name] = kindOf(dialect, config, c)
      newInShoal.push(c.name)
    } else {
      checkKind(dialect, config, c, kind)
    }
  }
  const names = new Set(sql.map((c) => c.name))
  const addSql = Object.entries(shoal.columns)
    .filter(([name]) => !names.has(name))
    .map(([name, kind]) => ({ name, sqlType: sqlTypeForKind(dialect, kind, false) }))
  let schema: ResolvedSchema
  try {
    schema = validateSchema({ name: shoal.name, primaryKey: shoal.primaryKey, partitionBy: shoal.partitionBy, engine: shoal.engine, columns })
  } catch (error) {
    throw new BridgeConfigError(`${where}: ${(error as Error).message}`)
  }
  return finish(config, schema, null, addSql, newInShoal)
}

function finish(config: BridgeTableConfig, schema: ResolvedSchema, createSql: MirrorPlan['createSql'], addSql: MirrorPlan['addSql'], newInShoal: string[]): MirrorPlan {
  const columns = Object.entries(schema.columns).map(([name, kind]) => ({ name, kind }))
  return {
    spec: { sqlTable: config.sql, shoalTable: schema.name, primaryKey: schema.primaryKey, columns },
    schema,
    counters: columns.filter((c) => c.kind === 'counter').map((c) => c.name),
    createSql,
    addSql,
    newInShoal,
  }
}

/** A mirrored column missing from the SQL table now: only ADD COLUMN is mirrored. */
export function checkNothingDropped(spec: MirrorSpec, sql: readonly SqlColumnInfo[] | null): void {
  if (sql === null) throw new SqlSchemaChangeError(`SQL table '${spec.sqlTable}' was dropped; the bridge mirrors ADD COLUMN only: restore the table, or remove it from the bridge's tables`)
  const names = new Set(sql.map((c) => c.name))
  const gone = spec.columns.filter((c) => !names.has(c.name)).map((c) => c.name)
  if (gone.length > 0) {
    throw new SqlSchemaChangeError(
      `SQL table '${spec.sqlTable}' no longer has column${gone.length > 1 ? 's' : ''} ${gone.map((g) => `'${g}'`).join(', ')}; the bridge mirrors ADD COLUMN only ` +
        `(Shoal keeps every column): add the column back; rows of this table are not written back until then`,
    )
  }
}
