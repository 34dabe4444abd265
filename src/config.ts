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
  /**
   * More `Host` header values the HTTP API accepts, as 'name:port', besides its own address
   * (127.0.0.1, localhost, [::1] and the listen host, at its port). Anything else is refused, so a
   * web page on a domain re-pointed at this machine (DNS rebinding) cannot use the API.
   */
  httpHosts: string[]
  /** Web origins (https://app.example) whose pages may call the HTTP API (CORS); default none. */
  httpOrigins: string[]
  /** Serve GET /metrics without the API token, for scrapers that cannot send one (default false). */
  metricsPublic: boolean
  /** Serve as a circuit relay v2 so peers behind NAT can be reached through this one. */
  relay: boolean
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
const FIELDS = new Set(['name', 'data', 'tables', 'listen', 'bootstrap', 'mdns', 'carries', 'http', 'httpHosts', 'httpOrigins', 'metricsPublic', 'relay'])

/** Parses 'HOST:PORT' (IPv6 hosts in brackets); throws ConfigError naming `what`. */
export function parseHostPort(what: string, value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value)
  const port = match === null ? NaN : Number(match[2])
  if (match === null || port > 65535) throw new ConfigError(`${what} must be HOST:PORT, e.g. 127.0.0.1:7001 (got '${value}')`)
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
}

/**
 * Parses a web origin for the HTTP API's allow-list: scheme, host and port only, as browsers send
 * it in `Origin` (`https://app.example`, `http://localhost:5173`); returns it in that canonical
 * form. `null` (sandboxed pages, files) can never be allowed. Throws ConfigError naming `what`.
 */
export function parseOrigin(what: string, value: string): string {
  let url: URL | null = null
  try {
    url = new URL(value)
  } catch {
    // reported below
  }
  const bare = url !== null && url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '' && url.password === '' && !value.includes('#')
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || !bare) {
    throw new ConfigError(`${what} must be a web origin, http(s)://host[:port] with no path, e.g. https://app.example (got '${value}')`)
  }
  return url.origin
}

function stringList(source: string, field: string, value: unknown, what = 'multiaddr strings'): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
    throw new ConfigError(`${source}: '${field}' must be an array of ${what}`)
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
  if (input.metricsPublic !== undefined && typeof input.metricsPublic !== 'boolean') throw new ConfigError(`${source}: 'metricsPublic' must be true or false`)
  const httpHosts = stringList(source, 'httpHosts', input.httpHosts, '"name:port" strings')
  httpHosts.forEach((h, i) => parseHostPort(`${source}: httpHosts[${i}]`, h))
  const httpOrigins = stringList(source, 'httpOrigins', input.httpOrigins, 'origins').map((o, i) => parseOrigin(`${source}: httpOrigins[${i}]`, o))
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
    httpHosts,
    httpOrigins,
    metricsPublic: (input.metricsPublic as boolean | undefined) ?? false,
    relay: (input.relay as boolean | undefined) ?? false,
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
