import { NAME_PATTERN } from '../constants.js'
import { isPlainObject, ENGINE_NAMES, type EngineName } from '../table/schema.js'
import { BridgeConfigError } from './errors.js'
import { checkIdentifier, RESERVED_PREFIX } from './dialect.js'

/** The `bridge` field of a peer config: which SQL database this peer mirrors, and which tables. */
export interface BridgeConfig {
  database: DatabaseConfig
  tables: BridgeTableConfig[]
  /** Polling fallback: the capture table is read at least this often (ms) when no push arrives. */
  pollMs: number
  /** Captured changes applied per atomic store batch, and rows per write-back transaction. */
  batchRows: number
  /** Dead letters are retried after retryMinMs, doubling up to retryMaxMs. */
  retryMinMs: number
  retryMaxMs: number
}

export type DatabaseConfig = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string } | { dialect: 'mysql'; url: string }

export interface BridgeTableConfig {
  /** The Shoal table. */
  table: string
  /** The SQL table (default: the same name). */
  sql: string
  /** Columns mirrored as counters (captured as increments) when the Shoal schema is derived from SQL. */
  counters: string[]
  /** Columns mirrored as collaborative text when the schema is derived. */
  text: string[]
  /** Text columns mirrored as JSON when the schema is derived. */
  json: string[]
  /** Partition column of a derived schema. */
  partitionBy: string | null
  /** Engine of a derived schema (default yjs). */
  engine: EngineName | null
}

export const DEFAULT_BRIDGE_POLL_MS = 250
export const MIN_BRIDGE_POLL_MS = 10
export const MAX_BRIDGE_POLL_MS = 60_000
export const DEFAULT_BRIDGE_BATCH_ROWS = 1000
/** At most the store's atomic batch size (MAX_ATOMIC_WRITES) divided by the ops one change may need. */
export const MAX_BRIDGE_BATCH_ROWS = 1000
export const DEFAULT_RETRY_MIN_MS = 1000
export const DEFAULT_RETRY_MAX_MS = 5 * 60_000

const FIELDS = new Set(['database', 'tables', 'pollMs', 'batchRows', 'retryMinMs', 'retryMaxMs'])
const TABLE_FIELDS = new Set(['table', 'sql', 'counters', 'text', 'json', 'partitionBy', 'engine'])

/** Reads 'sqlite:PATH', 'postgres://…' / 'postgresql://…' or 'mysql://…' / 'mariadb://…'. */
export function parseDatabase(where: string, value: unknown): DatabaseConfig {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new BridgeConfigError(`${where}: 'database' must be "sqlite:PATH", "postgres://USER@HOST:PORT/DB" or "mysql://USER@HOST:PORT/DB"`)
  }
  if (value.startsWith('sqlite:')) {
    const path = value.slice('sqlite:'.length)
    if (path === '' || path === ':memory:') throw new BridgeConfigError(`${where}: 'database' "${value}" needs a file path after 'sqlite:' (a database file other programs can open)`)
    return { dialect: 'sqlite', path }
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new BridgeConfigError(`${where}: 'database' "${value}" is neither sqlite:PATH nor a postgres:// or mysql:// URL`)
  }
  const database = url.pathname.replace(/^\//, '')
  if (database === '') throw new BridgeConfigError(`${where}: 'database' URL must name the database after the host, e.g. postgres://postgres@127.0.0.1:5432/shoal`)
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') return { dialect: 'postgres', url: value }
  if (url.protocol === 'mysql:' || url.protocol === 'mariadb:') return { dialect: 'mysql', url: value }
  throw new BridgeConfigError(`${where}: 'database' protocol '${url.protocol}' is not supported; use sqlite:PATH, postgres:// or mysql://`)
}

function names(where: string, field: string, value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new BridgeConfigError(`${where}: '${field}' must be an array of column names`)
  return value.map((v) => checkIdentifier(`${where}: ${field} entry`, typeof v === 'string' ? v : String(v)))
}

function integer(where: string, field: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new BridgeConfigError(`${where}: '${field}' must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
  }
  return value
}

function parseTable(where: string, input: unknown): BridgeTableConfig {
  if (typeof input === 'string') input = { table: input }
  if (!isPlainObject(input)) throw new BridgeConfigError(`${where}: a table entry is a table name or an object { table, sql?, counters?, text?, json?, partitionBy?, engine? }`)
  for (const key of Object.keys(input)) {
    if (!TABLE_FIELDS.has(key)) throw new BridgeConfigError(`${where}: unknown field '${key}' (allowed: ${[...TABLE_FIELDS].join(', ')})`)
  }
  if (typeof input.table !== 'string' || !NAME_PATTERN.test(input.table)) {
    throw new BridgeConfigError(`${where}: table ${JSON.stringify(input.table)} is not a valid name: use a letter followed by up to 62 letters, digits or '_'`)
  }
  const table = input.table
  const sql = checkIdentifier(`${where}: 'sql'`, input.sql === undefined ? table : typeof input.sql === 'string' ? input.sql : String(input.sql))
  if (sql.toLowerCase().startsWith(RESERVED_PREFIX)) throw new BridgeConfigError(`${where}: SQL table '${sql}' starts with '${RESERVED_PREFIX}', which the bridge keeps for its own tables`)
  let partitionBy: string | null = null
  if (input.partitionBy !== undefined && input.partitionBy !== null) partitionBy = checkIdentifier(`${where}: 'partitionBy'`, String(input.partitionBy))
  let engine: EngineName | null = null
  if (input.engine !== undefined) {
    if (typeof input.engine !== 'string' || !(ENGINE_NAMES as readonly string[]).includes(input.engine)) {
      throw new BridgeConfigError(`${where}: 'engine' must be one of ${ENGINE_NAMES.join(', ')}`)
    }
    engine = input.engine as EngineName
  }
  return { table, sql, counters: names(where, 'counters', input.counters), text: names(where, 'text', input.text), json: names(where, 'json', input.json), partitionBy, engine }
}

/** Validates the `bridge` field of a peer config; every message names the source and the field. */
export function parseBridgeConfig(input: unknown, source: string): BridgeConfig {
  const where = `${source}: bridge`
  if (!isPlainObject(input)) throw new BridgeConfigError(`${where} must be an object { database, tables, … }`)
  for (const key of Object.keys(input)) {
    if (!FIELDS.has(key)) throw new BridgeConfigError(`${where}: unknown field '${key}' (allowed: ${[...FIELDS].join(', ')})`)
  }
  const database = parseDatabase(where, input.database)
  if (!Array.isArray(input.tables) || input.tables.length === 0) throw new BridgeConfigError(`${where}: 'tables' must list the tables to mirror, e.g. ["sales", "stock"]`)
  const tables = input.tables.map((t: unknown, i: number) => parseTable(`${where}.tables[${i}]`, t))
  for (const field of ['table', 'sql'] as const) {
    const seen = tables.map((t) => t[field].toLowerCase())
    const twice = seen.find((n, i) => seen.indexOf(n) !== i)
    if (twice !== undefined) throw new BridgeConfigError(`${where}: ${field === 'table' ? 'Shoal' : 'SQL'} table '${twice}' is mirrored twice`)
  }
  const retryMinMs = integer(where, 'retryMinMs', input.retryMinMs, DEFAULT_RETRY_MIN_MS, 10, 3_600_000)
  const retryMaxMs = integer(where, 'retryMaxMs', input.retryMaxMs, Math.max(DEFAULT_RETRY_MAX_MS, retryMinMs), retryMinMs, 86_400_000)
  return {
    database,
    tables,
    pollMs: integer(where, 'pollMs', input.pollMs, DEFAULT_BRIDGE_POLL_MS, MIN_BRIDGE_POLL_MS, MAX_BRIDGE_POLL_MS),
    batchRows: integer(where, 'batchRows', input.batchRows, DEFAULT_BRIDGE_BATCH_ROWS, 1, MAX_BRIDGE_BATCH_ROWS),
    retryMinMs,
    retryMaxMs,
  }
}
