import { readFile } from 'node:fs/promises'
import { ShoalError } from './errors.js'
import { isPlainObject, validateSchema, type ResolvedSchema } from './table/schema.js'

/** A peer's configuration file (peers/<name>.json). */
export interface PeerConfig {
  /** A label for logs and status. */
  name: string | null
  /** Data folder, relative to the directory shoal runs in. */
  data: string
  /** Tables this peer defines at start (existing tables are extended, never narrowed). */
  tables: ResolvedSchema[]
  /** libp2p multiaddrs to listen on. */
  listen: string[]
  /** Multiaddrs (with /p2p/<id>) of peers to join through. */
  bootstrap: string[]
  /** Discover peers on the LAN by mDNS. */
  mdns: boolean
  /**
   * Partial replication: table → the only partitions of it this peer receives and stores (e.g. a
   * store peer's own store). Tables not listed are carried whole (every partition).
   */
  carries: Record<string, string[]>
  /** Address of the local HTTP API, 'HOST:PORT' (port 0: any free port), or null for none. */
  http: string | null
  /** Serve as a circuit relay v2 so peers behind NAT can be reached through this one. */
  relay: boolean
  /**
   * Mirror tables of a SQL database (SQLite, PostgreSQL, MySQL/MariaDB), or null. Kept as written
   * here and validated by the bridge (src/bridge/config.ts, which sits above this file) when the
   * peer starts; its errors name `source`, the config file.
   */
  bridge?: { source: string; input: unknown } | null
}

export class ConfigError extends ShoalError {
  constructor(message: string) {
    super('CONFIG_INVALID', message)
  }
}

export const DEFAULT_DATA_DIR = 'data'
/** TCP and WebSockets on all interfaces, ports chosen by the OS. */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws']
/** The HTTP API answers on loopback only unless the config says otherwise; port chosen by the OS. */
export const DEFAULT_HTTP = '127.0.0.1:0'
const FIELDS = new Set(['name', 'data', 'tables', 'listen', 'bootstrap', 'mdns', 'carries', 'http', 'relay', 'bridge'])

/** Parses 'HOST:PORT' (IPv6 hosts in brackets); throws ConfigError naming `what`. */
export function parseHostPort(what: string, value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value)
  const port = match === null ? NaN : Number(match[2])
  if (match === null || port > 65535) throw new ConfigError(`${what} must be HOST:PORT, e.g. 127.0.0.1:7001 (got '${value}')`)
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
}

function stringList(source: string, field: string, value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
    throw new ConfigError(`${source}: '${field}' must be an array of multiaddr strings`)
  }
  return value as string[]
}

/** Validates a parsed config object; every message names the file and the bad field. */
export function parseConfig(input: unknown, source: string): PeerConfig {
  if (!isPlainObject(input)) throw new ConfigError(`${source}: the config must be a JSON object`)
  for (const key of Object.keys(input)) {
    if (!FIELDS.has(key)) throw new ConfigError(`${source}: unknown field '${key}' (allowed: ${[...FIELDS].join(', ')})`)
  }
  if (input.name !== undefined && (typeof input.name !== 'string' || input.name === '')) {
    throw new ConfigError(`${source}: 'name' must be a non-empty string`)
  }
  if (input.data !== undefined && (typeof input.data !== 'string' || input.data === '')) {
    throw new ConfigError(`${source}: 'data' must be a folder path`)
  }
  const tables: ResolvedSchema[] = []
  if (input.tables !== undefined) {
    if (!Array.isArray(input.tables)) throw new ConfigError(`${source}: 'tables' must be an array of table schemas`)
    input.tables.forEach((schema: unknown, i: number) => {
      try {
        tables.push(validateSchema(schema))
      } catch (error) {
        throw new ConfigError(`${source}: tables[${i}]: ${(error as Error).message}`)
      }
    })
    const names = tables.map((t) => t.name)
    const twice = names.find((n, i) => names.indexOf(n) !== i)
    if (twice !== undefined) throw new ConfigError(`${source}: table '${twice}' is defined twice`)
  }
  if (input.mdns !== undefined && typeof input.mdns !== 'boolean') throw new ConfigError(`${source}: 'mdns' must be true or false`)
  if (input.relay !== undefined && typeof input.relay !== 'boolean') throw new ConfigError(`${source}: 'relay' must be true or false`)
  const carries: Record<string, string[]> = {}
  if (input.carries !== undefined) {
    if (!isPlainObject(input.carries)) throw new ConfigError(`${source}: 'carries' must be an object of table → [partitions]`)
    for (const [table, partitions] of Object.entries(input.carries)) {
      if (!Array.isArray(partitions) || !partitions.every((p) => typeof p === 'string')) {
        throw new ConfigError(`${source}: carries.${table} must be an array of partition values (strings)`)
      }
      carries[table] = partitions as string[]
    }
  }
  let http: string | null = DEFAULT_HTTP
  if (input.http !== undefined) {
    if (input.http === false || input.http === null) http = null
    else if (typeof input.http !== 'string') throw new ConfigError(`${source}: 'http' must be "HOST:PORT" or false`)
    else {
      parseHostPort(`${source}: 'http'`, input.http)
      http = input.http
    }
  }
  return {
    name: (input.name as string | undefined) ?? null,
    data: (input.data as string | undefined) ?? DEFAULT_DATA_DIR,
    tables,
    listen: input.listen === undefined ? DEFAULT_LISTEN : stringList(source, 'listen', input.listen),
    bootstrap: stringList(source, 'bootstrap', input.bootstrap),
    mdns: (input.mdns as boolean | undefined) ?? true,
    carries,
    http,
    relay: (input.relay as boolean | undefined) ?? false,
    ...(input.bridge === undefined || input.bridge === null ? {} : { bridge: { source, input: input.bridge } }),
  }
}

export async function loadConfig(path: string): Promise<PeerConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`cannot read config file '${path}': ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`${path}: not valid JSON: ${(error as Error).message}`)
  }
  return parseConfig(parsed, path)
}
