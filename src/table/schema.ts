import * as v from 'valibot'
import { MAX_COLUMNS, MAX_KEY_BYTES, MAX_VALUE_BYTES, NAME_PATTERN } from '../constants.js'
import { SchemaConflictError, SchemaError, ValidationError } from '../errors.js'
import { entriesOf, fields, isPlainObject, oneOf, parseWith, shown, type Issue } from '../validation.js'
import { utf8Length } from './hash.js'

/** Register kinds hold one value (last writer wins); `counter` adds up; `text` merges edits. */
export const COLUMN_KINDS = ['string', 'number', 'boolean', 'json', 'counter', 'text'] as const
export type ColumnKind = (typeof COLUMN_KINDS)[number]
export type RegisterKind = 'string' | 'number' | 'boolean' | 'json'

export const ENGINE_NAMES = ['yjs', 'automerge', 'columns'] as const
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

export function isRegisterKind(kind: ColumnKind): kind is RegisterKind {
  return kind !== 'counter' && kind !== 'text'
}

const KEY_KINDS: readonly ColumnKind[] = ['string', 'number']
const NAME_RULE = "a letter followed by up to 62 letters, digits or '_'"

function nameOf(what: string) {
  const message = (issue: Issue): string => `must be ${what}: ${NAME_RULE} (got ${shown(issue.input)})`
  return v.pipe(v.string(message), v.regex(NAME_PATTERN, message))
}

const TABLE_FIELDS = fields(
  {
    name: v.pipe(nameOf('a table name'), v.description(`Table name: ${NAME_RULE}.`)),
    primaryKey: v.pipe(v.string('must name a column'), v.description('The column whose value is the row key (a string or number column).')),
    partitionBy: v.optional(
      v.pipe(v.nullable(v.string('must name a column, or be null')), v.description("The column whose value is the row's partition (string or number, not the key), or null; peers may carry only some partitions.")),
      null,
    ),
    engine: v.optional(v.pipe(oneOf(ENGINE_NAMES), v.description('CRDT engine of the rows: yjs (the default), automerge (keeps conflicting values and history) or columns (a small CRDT per cell, the fastest; no text columns). Fixed once the table exists.')), DEFAULT_ENGINE),
    columns: v.pipe(
      entriesOf(nameOf('a column name'), oneOf(COLUMN_KINDS), 'must be an object of column name → kind'),
      v.minEntries(1, 'is empty; a table needs at least one column'),
      v.maxEntries(MAX_COLUMNS, (issue) => `has ${Object.keys(issue.input).length} columns, over the limit of ${MAX_COLUMNS}`),
      v.description('Column name → kind: string, number, boolean, json (last writer wins), counter (increments add up) or text (concurrent edits merge). Columns can be added later, never changed.'),
    ),
  },
  'must be a JSON object',
)
type Fields = v.InferOutput<typeof TABLE_FIELDS>

/** `primaryKey` and `partitionBy` (when set) name a string or number column of the table. */
function keyColumn(field: 'primaryKey' | 'partitionBy') {
  const kind = (s: Fields): ColumnKind | undefined => (s[field] !== null && Object.hasOwn(s.columns, s[field]) ? s.columns[s[field]] : undefined)
  const isKey = (s: Fields): boolean => s[field] === null || KEY_KINDS.includes(kind(s)!)
  const message = (issue: v.CheckIssue<Fields>): string => {
    const s = issue.input
    return kind(s) === undefined ? `names ${shown(s[field])}, which is not among the columns` : `names column '${s[field]}', which is ${kind(s)}; it must be string or number`
  }
  return v.forward(v.check(isKey, message), [field])
}

/** A table schema as written in config files, HTTP bodies, catalog rows and library calls. */
export const TABLE_DEFINITION = v.pipe(
  TABLE_FIELDS,
  keyColumn('primaryKey'),
  keyColumn('partitionBy'),
  v.forward(v.check((s: Fields) => s.partitionBy !== s.primaryKey, 'must be a column other than the primary key'), ['partitionBy']),
  v.forward(
    v.check(
      (s: Fields) => s.engine !== 'columns' || !Object.values(s.columns).includes('text'),
      (issue) => `is 'columns', which has no text cells, but column '${Object.entries(issue.input.columns).find(([, k]) => k === 'text')![0]}' is text; use the yjs or automerge engine for a table with text columns`,
    ),
    ['engine'],
  ),
  v.description('A table: its columns and their kinds, the primary key, the partition column and the CRDT engine.'),
)

/** Checks a schema from any source and fills in defaults; throws SchemaError naming the bad field. */
export function validateSchema(input: unknown): ResolvedSchema {
  const name = isPlainObject(input) && typeof input.name === 'string' && NAME_PATTERN.test(input.name) ? input.name : undefined
  return parseWith(TABLE_DEFINITION, input, {
    source: name === undefined ? undefined : `table '${name}'`,
    what: 'a table schema',
    error: (message) => new SchemaError(message),
  })
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


// src/http still imports isPlainObject from here; it moves to src/validation.ts with the HTTP bodies.
export { isPlainObject } from '../validation.js'
