import type { ColumnKind } from '../table/schema.js'
import { SqlValueError } from './errors.js'

/*
 * Type mapping between SQL columns and Shoal column kinds, both ways (README, "SQL bridge").
 *
 * SQL → Shoal: a column's declared type gives the kinds it can mirror; the first is the one a
 * derived schema uses. `counter` is never derived (an integer column is a counter only when the
 * config or the Shoal schema says so: its changes are then captured as increments), nor `text`.
 * Shoal → SQL: the type a column gets when the bridge creates a table or adds a column.
 *
 * Values cross as JSON: triggers and row reads render a row with the database's own JSON
 * functions (json_object, to_jsonb, JSON_OBJECT), so a captured change and a row read back
 * look alike and compare exactly. Numbers are float64 in Shoal: integers beyond 2^53 lose
 * precision (use a string column for such identifiers).
 */

export type DialectName = 'sqlite' | 'postgres' | 'mysql'

export interface TypeRule {
  /** What the rule matches, for the documentation table. */
  sql: string
  kinds: readonly ColumnKind[]
}

const INTEGER: readonly ColumnKind[] = ['number', 'counter']
const DECIMAL: readonly ColumnKind[] = ['number']
const STRING: readonly ColumnKind[] = ['string', 'text', 'json']
const BOOLEAN: readonly ColumnKind[] = ['boolean']
const JSON_KINDS: readonly ColumnKind[] = ['json', 'string', 'text']
const TEMPORAL: readonly ColumnKind[] = ['string']

/** Normalised type name: lower case, no length/precision, single spaces. */
export function baseType(sqlType: string): string {
  return sqlType.toLowerCase().replace(/\(.*?\)/g, '').replace(/\s+/g, ' ').replace(/ unsigned| zerofill/g, '').trim()
}

/** SQLite: declared types are free text; SQLite's own affinity rules decide, with a few names first. */
function sqliteKinds(sqlType: string): readonly ColumnKind[] | null {
  const t = baseType(sqlType)
  if (t === 'boolean' || t === 'bool') return BOOLEAN
  if (t === 'json') return JSON_KINDS
  if (t === 'date' || t === 'datetime' || t === 'timestamp' || t === 'time') return TEMPORAL
  if (t.includes('int')) return INTEGER
  if (t.includes('char') || t.includes('clob') || t.includes('text')) return STRING
  if (t === '' || t.includes('blob')) return null
  if (t.includes('real') || t.includes('floa') || t.includes('doub')) return DECIMAL
  // NUMERIC affinity (numeric, decimal, …).
  return DECIMAL
}

const POSTGRES: Readonly<Record<string, readonly ColumnKind[]>> = {
  int2: INTEGER,
  int4: INTEGER,
  int8: INTEGER,
  float4: DECIMAL,
  float8: DECIMAL,
  numeric: DECIMAL,
  text: STRING,
  varchar: STRING,
  bpchar: STRING,
  citext: STRING,
  uuid: TEMPORAL,
  bool: BOOLEAN,
  json: JSON_KINDS,
  jsonb: JSON_KINDS,
  date: TEMPORAL,
  time: TEMPORAL,
  timetz: TEMPORAL,
  timestamp: TEMPORAL,
  timestamptz: TEMPORAL,
}

/** PostgreSQL: by `udt_name` (information_schema.columns), e.g. int4, varchar, timestamptz. */
function postgresKinds(udtName: string): readonly ColumnKind[] | null {
  return POSTGRES[udtName.toLowerCase()] ?? null
}

const MYSQL: Readonly<Record<string, readonly ColumnKind[]>> = {
  tinyint: INTEGER,
  smallint: INTEGER,
  mediumint: INTEGER,
  int: INTEGER,
  integer: INTEGER,
  bigint: INTEGER,
  float: DECIMAL,
  double: DECIMAL,
  decimal: DECIMAL,
  char: STRING,
  varchar: STRING,
  tinytext: STRING,
  text: STRING,
  mediumtext: STRING,
  longtext: STRING,
  json: JSON_KINDS,
  enum: TEMPORAL,
  set: TEMPORAL,
  date: TEMPORAL,
  datetime: TEMPORAL,
  timestamp: TEMPORAL,
  time: TEMPORAL,
  year: TEMPORAL,
}

/** MySQL / MariaDB: by COLUMN_TYPE (information_schema.COLUMNS); tinyint(1) is a boolean. */
function mysqlKinds(columnType: string): readonly ColumnKind[] | null {
  if (/^tinyint\(1\)/i.test(columnType.trim()) || /^bool(ean)?$/i.test(columnType.trim())) return BOOLEAN
  return MYSQL[baseType(columnType).split(' ')[0]!] ?? null
}

/** The Shoal kinds a SQL column type can mirror (first: the derived one), or null when none. */
export function kindsForSqlType(dialect: DialectName, sqlType: string): readonly ColumnKind[] | null {
  switch (dialect) {
    case 'sqlite':
      return sqliteKinds(sqlType)
    case 'postgres':
      return postgresKinds(sqlType)
    case 'mysql':
      return mysqlKinds(sqlType)
  }
}

/** The documented mapping table (README), one row per SQL type family and dialect. */
export const TYPE_TABLE: ReadonlyArray<{ sqlite: string; postgres: string; mysql: string; kinds: string }> = [
  { sqlite: 'INTEGER, INT, BIGINT… (INT affinity)', postgres: 'smallint, integer, bigint', mysql: 'tinyint, smallint, mediumint, int, bigint', kinds: 'number (or counter when declared)' },
  { sqlite: 'REAL, DOUBLE, FLOAT, NUMERIC, DECIMAL', postgres: 'real, double precision, numeric', mysql: 'float, double, decimal', kinds: 'number' },
  { sqlite: 'TEXT, VARCHAR(n), CHAR(n), CLOB', postgres: 'text, varchar(n), char(n), citext', mysql: 'char, varchar, tinytext … longtext', kinds: 'string (or text, json when declared)' },
  { sqlite: 'BOOLEAN, BOOL', postgres: 'boolean', mysql: 'tinyint(1), BOOLEAN', kinds: 'boolean' },
  { sqlite: 'JSON', postgres: 'json, jsonb', mysql: 'json', kinds: 'json (or string, text)' },
  { sqlite: 'DATE, DATETIME, TIMESTAMP, TIME (as text)', postgres: 'date, time, timestamp, timestamptz, uuid', mysql: 'date, datetime, timestamp, time, year, enum, set', kinds: 'string (ISO text as the database renders it)' },
  { sqlite: 'BLOB, no declared type', postgres: 'bytea, arrays, geometric, user-defined…', mysql: 'blob, binary, varbinary, bit, geometry', kinds: 'refused at start' },
]

/** The SQL type a Shoal column gets when the bridge creates a table or adds a column. */
export function sqlTypeForKind(dialect: DialectName, kind: ColumnKind, isKey: boolean): string {
  switch (dialect) {
    case 'sqlite':
      return { string: 'TEXT', number: 'REAL', boolean: 'BOOLEAN', json: 'TEXT', counter: 'INTEGER', text: 'TEXT' }[kind]
    case 'postgres':
      return { string: 'text', number: 'double precision', boolean: 'boolean', json: 'jsonb', counter: 'bigint', text: 'text' }[kind]
    case 'mysql':
      // Key columns must be indexable: 512 characters holds any key (MAX_KEY_BYTES is 512 bytes).
      if (isKey) return kind === 'number' ? 'DOUBLE' : 'VARCHAR(512)'
      return { string: 'MEDIUMTEXT', number: 'DOUBLE', boolean: 'BOOLEAN', json: 'JSON', counter: 'BIGINT', text: 'MEDIUMTEXT' }[kind]
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 60 ? text.slice(0, 60) + '…' : text
}

/**
 * A value as the database's JSON rendering gives it (trigger capture, row read) → the Shoal
 * value of a column of `kind`. `jsonAsText`: the database renders JSON columns as text (SQLite,
 * MySQL), so it is parsed here. Throws SqlValueError naming the column.
 */
export function fromSqlValue(kind: ColumnKind, value: unknown, where: string, jsonAsText: boolean): unknown {
  if (value === null || value === undefined) return kind === 'counter' ? 0 : kind === 'text' ? '' : null
  switch (kind) {
    case 'string':
    case 'text':
      if (typeof value === 'string') return value
      if (typeof value === 'number' || typeof value === 'boolean') return String(value)
      return JSON.stringify(value)
    case 'number': {
      const n = typeof value === 'number' ? value : typeof value === 'boolean' ? Number(value) : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
      if (!Number.isFinite(n)) throw new SqlValueError(`${where}: ${describe(value)} is not a finite number`)
      return n
    }
    case 'counter': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN
      if (!Number.isSafeInteger(n)) throw new SqlValueError(`${where}: ${describe(value)} is not an integer (a counter column holds whole numbers up to 2^53)`)
      return n
    }
    case 'boolean':
      if (typeof value === 'boolean') return value
      if (typeof value === 'number') return value !== 0
      if (typeof value === 'string') {
        const t = value.trim().toLowerCase()
        if (['1', 't', 'true', 'y', 'yes'].includes(t)) return true
        if (['0', 'f', 'false', 'n', 'no'].includes(t)) return false
      }
      throw new SqlValueError(`${where}: ${describe(value)} is not a boolean`)
    case 'json':
      if (jsonAsText && typeof value === 'string') {
        try {
          return JSON.parse(value) as unknown
        } catch {
          throw new SqlValueError(`${where}: ${describe(value)} is not valid JSON`)
        }
      }
      return value
  }
}

/** A Shoal value → the parameter a driver binds for a column of `kind`. */
export function toSqlValue(dialect: DialectName, kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return kind === 'counter' ? 0 : kind === 'text' ? '' : null
  switch (kind) {
    case 'boolean':
      return dialect === 'postgres' ? value === true : value === true ? 1 : 0
    case 'json':
      // Always text: node-pg would turn a JS array into a PostgreSQL array, not JSON.
      return JSON.stringify(value)
    default:
      return value
  }
}

/** JSON text with object keys sorted, so values compare equal whatever order a database keeps. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.keys(value as object)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
  return `{${entries.join(',')}}`
}

/** Equal as Shoal values of `kind` (JSON by content, not key order). */
export function sameValue(kind: ColumnKind, a: unknown, b: unknown): boolean {
  if (kind === 'json') return canonicalJson(a) === canonicalJson(b)
  return a === b || (a === null && b === undefined) || (a === undefined && b === null)
}
