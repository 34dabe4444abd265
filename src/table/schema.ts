import { MAX_COLUMNS, MAX_KEY_BYTES, MAX_VALUE_BYTES, NAME_PATTERN } from '../constants.js'
import { SchemaConflictError, SchemaError, ValidationError } from '../errors.js'
import { utf8Length } from './hash.js'

/** Register kinds hold one value (last writer wins); `counter` adds up; `text` merges edits. */
export const COLUMN_KINDS = ['string', 'number', 'boolean', 'json', 'counter', 'text'] as const
export type ColumnKind = (typeof COLUMN_KINDS)[number]
export type RegisterKind = 'string' | 'number' | 'boolean' | 'json'

export const ENGINE_NAMES = ['yjs', 'automerge'] as const
export type EngineName = (typeof ENGINE_NAMES)[number]
/** Yjs measured several times faster per row (bench/README.md), so it is the default. */
export const DEFAULT_ENGINE: EngineName = 'yjs'

/** A table schema as written in config files, HTTP bodies and library calls. */
export interface TableSchema {
  name: string
  primaryKey: string
  partitionBy?: string | null
  engine?: EngineName
  columns: Record<string, ColumnKind>
}

/** A validated schema with defaults filled in. */
export interface ResolvedSchema {
  readonly name: string
  readonly primaryKey: string
  readonly partitionBy: string | null
  readonly engine: EngineName
  readonly columns: Readonly<Record<string, ColumnKind>>
}

const SCHEMA_FIELDS = new Set(['name', 'primaryKey', 'partitionBy', 'engine', 'columns'])
const KEY_KINDS: ReadonlySet<ColumnKind> = new Set(['string', 'number'])

export function isRegisterKind(kind: ColumnKind): kind is RegisterKind {
  return kind !== 'counter' && kind !== 'text'
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

export function validateName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new SchemaError(
      `${what} ${JSON.stringify(name)} is not a valid name: use a letter followed by up to 62 letters, digits or '_'`,
    )
  }
  return name
}

/** Checks a schema from any source and fills in defaults; throws SchemaError naming the bad field. */
export function validateSchema(input: unknown): ResolvedSchema {
  if (!isPlainObject(input)) throw new SchemaError('a table schema must be a JSON object')
  for (const field of Object.keys(input)) {
    if (!SCHEMA_FIELDS.has(field)) {
      throw new SchemaError(`unknown schema field '${field}' (allowed: ${[...SCHEMA_FIELDS].join(', ')})`)
    }
  }
  const name = validateName('table name', input.name)
  const where = `table '${name}'`
  if (!isPlainObject(input.columns)) throw new SchemaError(`${where}: 'columns' must be an object of column name → kind`)
  const entries = Object.entries(input.columns)
  if (entries.length === 0) throw new SchemaError(`${where}: 'columns' is empty`)
  if (entries.length > MAX_COLUMNS) throw new SchemaError(`${where}: ${entries.length} columns, over the limit of ${MAX_COLUMNS}`)
  const columns: Record<string, ColumnKind> = {}
  for (const [column, kind] of entries) {
    validateName(`${where}: column name`, column)
    if (typeof kind !== 'string' || !(COLUMN_KINDS as readonly string[]).includes(kind)) {
      throw new SchemaError(`${where}: column '${column}' has kind ${JSON.stringify(kind)}; use one of ${COLUMN_KINDS.join(', ')}`)
    }
    columns[column] = kind as ColumnKind
  }
  const primaryKey = keyColumn(where, 'primaryKey', input.primaryKey, columns)
  let partitionBy: string | null = null
  if (input.partitionBy !== undefined && input.partitionBy !== null) {
    partitionBy = keyColumn(where, 'partitionBy', input.partitionBy, columns)
    if (partitionBy === primaryKey) throw new SchemaError(`${where}: partitionBy must be a column other than the primary key`)
  }
  let engine: EngineName = DEFAULT_ENGINE
  if (input.engine !== undefined) {
    if (typeof input.engine !== 'string' || !(ENGINE_NAMES as readonly string[]).includes(input.engine)) {
      throw new SchemaError(`${where}: engine ${JSON.stringify(input.engine)} is unknown; use one of ${ENGINE_NAMES.join(', ')}`)
    }
    engine = input.engine as EngineName
  }
  return { name, primaryKey, partitionBy, engine, columns }
}

function keyColumn(where: string, field: string, value: unknown, columns: Record<string, ColumnKind>): string {
  if (typeof value !== 'string') throw new SchemaError(`${where}: '${field}' must name a column`)
  const kind = columns[value]
  if (kind === undefined) throw new SchemaError(`${where}: '${field}' names '${value}', which is not among the columns`)
  if (!KEY_KINDS.has(kind)) throw new SchemaError(`${where}: '${field}' column '${value}' is ${kind}; it must be string or number`)
  return value
}

/**
 * Merges a new definition into an existing table: columns may be added, nothing else may change,
 * because rows already written depend on the key, the partition column, the engine and each kind.
 * Columns left out of `next` are kept (dropping a column is not supported).
 */
export function extendSchema(current: ResolvedSchema, next: ResolvedSchema): ResolvedSchema {
  const where = `table '${current.name}'`
  if (next.primaryKey !== current.primaryKey) {
    throw new SchemaConflictError(`${where}: primaryKey is '${current.primaryKey}' and cannot change to '${next.primaryKey}'`)
  }
  if (next.partitionBy !== current.partitionBy) {
    throw new SchemaConflictError(`${where}: partitionBy is ${JSON.stringify(current.partitionBy)} and cannot change to ${JSON.stringify(next.partitionBy)}`)
  }
  if (next.engine !== current.engine) {
    throw new SchemaConflictError(`${where}: engine is '${current.engine}' and cannot change to '${next.engine}'`)
  }
  const columns: Record<string, ColumnKind> = { ...current.columns }
  for (const [column, kind] of Object.entries(next.columns)) {
    const had = columns[column]
    if (had !== undefined && had !== kind) {
      throw new SchemaConflictError(`${where}: column '${column}' is ${had} and cannot change to ${kind}; add a new column instead`)
    }
    columns[column] = kind
  }
  if (Object.keys(columns).length > MAX_COLUMNS) throw new SchemaError(`${where}: more than ${MAX_COLUMNS} columns`)
  return { ...current, columns }
}

export function sameSchema(a: ResolvedSchema, b: ResolvedSchema): boolean {
  if (a.name !== b.name || a.primaryKey !== b.primaryKey || a.partitionBy !== b.partitionBy || a.engine !== b.engine) return false
  const ak = Object.keys(a.columns)
  return ak.length === Object.keys(b.columns).length && ak.every((c) => a.columns[c] === b.columns[c])
}

/**
 * Row keys and partition values are strings at the storage level. A number key is written in its
 * canonical decimal form, so 7, 7.0 and "7" name the same row.
 */
export function normalizeKeyValue(what: string, kind: ColumnKind, value: unknown): string {
  let text: string
  if (kind === 'number') {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new ValidationError(`${what} must be a finite number, got ${JSON.stringify(value)}`)
    text = String(n)
  } else {
    if (typeof value !== 'string') throw new ValidationError(`${what} must be a string, got ${JSON.stringify(value)}`)
    text = value
  }
  if (text.length === 0) throw new ValidationError(`${what} must not be empty`)
  if (text.includes('\u0000')) throw new ValidationError(`${what} must not contain the NUL character`)
  const bytes = utf8Length(text)
  if (bytes > MAX_KEY_BYTES) throw new ValidationError(`${what} is ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`)
  return text
}

/** The value a key column holds inside the row: a number for number keys, else the string. */
export function keyColumnValue(kind: ColumnKind, key: string): string | number {
  return kind === 'number' ? Number(key) : key
}

/** Checks one register or text value against its column kind; returns the value to store. */
export function validateValue(table: string, column: string, kind: ColumnKind, value: unknown): unknown {
  const where = `table '${table}', column '${column}' (${kind})`
  if (value === undefined) throw new ValidationError(`${where}: value is undefined; use null to clear a column`)
  switch (kind) {
    case 'string':
      if (value !== null && typeof value !== 'string') throw new ValidationError(`${where}: expected a string or null, got ${describe(value)}`)
      break
    case 'number':
      if (value !== null && (typeof value !== 'number' || !Number.isFinite(value))) {
        throw new ValidationError(`${where}: expected a finite number or null, got ${describe(value)}`)
      }
      break
    case 'boolean':
      if (value !== null && typeof value !== 'boolean') throw new ValidationError(`${where}: expected true, false or null, got ${describe(value)}`)
      break
    case 'json':
      assertJson(where, value, 0)
      break
    case 'counter':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        throw new ValidationError(`${where}: expected an integer, got ${describe(value)}`)
      }
      break
    case 'text':
      if (typeof value !== 'string') throw new ValidationError(`${where}: expected a string, got ${describe(value)}`)
      break
  }
  if (typeof value === 'string' || kind === 'json') {
    const bytes = utf8Length(typeof value === 'string' ? value : JSON.stringify(value))
    if (bytes > MAX_VALUE_BYTES) throw new ValidationError(`${where}: value is ${bytes} bytes; the limit is ${MAX_VALUE_BYTES}`)
  }
  return value
}

function assertJson(where: string, value: unknown, depth: number): void {
  if (depth > 64) throw new ValidationError(`${where}: JSON value nests deeper than 64 levels`)
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ValidationError(`${where}: JSON numbers must be finite, got ${value}`)
    return
  }
  if (Array.isArray(value)) {
    for (const item of value) assertJson(where, item, depth + 1)
    return
  }
  if (isPlainObject(value)) {
    for (const item of Object.values(value)) assertJson(where, item, depth + 1)
    return
  }
  throw new ValidationError(`${where}: ${describe(value)} is not a JSON value`)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

export { isPlainObject }
