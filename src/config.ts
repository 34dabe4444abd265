import { readFile } from 'node:fs/promises'
import * as v from 'valibot'
import { ShoalError } from './errors.js'
import { TABLE_DEFINITION } from './table/schema.js'
import { NAME_PATTERN } from './constants.js'
import { entriesOf, fields, integerIn, parseWith, shown, type Issue } from './validation.js'

/*
 * A peer's configuration file (peers/<name>.json), declared once in CONFIG_FIELDS below.
 *
 * To add a field, add one entry to CONFIG_FIELDS: its valibot schema with the message that follows
 * the field's name when the value is wrong, a v.description() (editors show it), and its default
 * (v.optional(schema, default)). PeerConfig, the list of allowed fields in the "unknown field"
 * message and the JSON Schema follow from it; then run `npm run schema` to regenerate
 * peers/shoal-config.schema.json (a test fails while the committed file is stale), and add a row
 * to the table in peers/README.md.
 */

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
/** An admission written when a peer creates its mesh (config `mesh.create`) lasts this long unless `days` says otherwise. */
export const DEFAULT_ADMISSION_DAYS = 365
/** Longest admission, in days (ten years): beyond that, renew. */
export const MAX_ADMISSION_DAYS = 3650
/** The generated JSON Schema beside the shipped configs, named by their "$schema". */
export const CONFIG_SCHEMA_FILE = 'shoal-config.schema.json'

/** 'HOST:PORT', IPv6 hosts in brackets. */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/
const MAX_PORT = 65535

function splitHostPort(value: string): { host: string; port: number } | null {
  const match = HOST_PORT.exec(value)
  const port = match === null ? NaN : Number(match[2])
  return match === null || port > MAX_PORT ? null : { host: match[1]!.replace(/^\[|\]$/g, ''), port }
}

/** Parses 'HOST:PORT' (IPv6 hosts in brackets) from a flag; throws ConfigError naming `what`. */
export function parseHostPort(what: string, value: string): { host: string; port: number } {
  const parsed = splitHostPort(value)
  if (parsed === null) throw new ConfigError(`${what} must be HOST:PORT, e.g. 127.0.0.1:7001 (got '${value}')`)
  return parsed
}

/**
 * A web origin in the canonical form browsers send in `Origin` (scheme, host, port only:
 * `https://app.example`, `http://localhost:5173`); null when `value` is anything else. `null`
 * (sandboxed pages, files) is never one.
 */
export function canonicalOrigin(value: string): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  const bare = url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '' && url.password === '' && !value.includes('#')
  return (url.protocol === 'http:' || url.protocol === 'https:') && bare ? url.origin : null
}

const originMessage = (issue: Issue): string => `must be a web origin, http(s)://host[:port] with no path, e.g. https://app.example (got ${shown(issue.input)})`

/** Parses a web origin for the HTTP API's allow-list (library callers); throws ConfigError naming `what`. */
export function parseOrigin(what: string, value: string): string {
  const origin = canonicalOrigin(value)
  if (origin === null) throw new ConfigError(`${what} ${originMessage({ input: value } as Issue)}`)
  return origin
}

const hostPortMessage = (issue: Issue): string => `must be HOST:PORT, e.g. 127.0.0.1:7001 (got ${shown(issue.input)})`
const hostPort = () => v.pipe(v.string(hostPortMessage), v.regex(HOST_PORT, hostPortMessage), v.check((s) => splitHostPort(s) !== null, hostPortMessage))
const multiaddrs = (description: string) =>
  v.pipe(v.array(v.pipe(v.string('must be a multiaddr string'), v.nonEmpty('must be a multiaddr string')), 'must be an array of multiaddr strings'), v.description(description))
const flag = (description: string) => v.pipe(v.boolean('must be true or false'), v.description(description))

const MEMBER_FOLDER = v.pipe(v.string(), v.nonEmpty('must be a folder path'))
const MESH_CREATE = fields(
  {
    dir: v.pipe(v.string('must be a folder path'), v.nonEmpty('must be a folder path'), v.description("This peer's member folder (relative to the data folder).")),
    create: v.optional(
      v.nullable(
        v.pipe(
          fields(
            {
              authority: v.pipe(v.string('must be a folder path'), v.nonEmpty('must be a folder path'), v.description("Where the new mesh's authority folder goes (relative to the data folder); holds the authority key: copy it somewhere safe and offline.")),
              rules: v.pipe(v.string('must be a file path'), v.nonEmpty('must be a file path'), v.description('The rules source (JSON: groups, tables, otherTables), relative to the directory shoal runs in.')),
              group: v.pipe(v.string('must be a group name'), v.regex(NAME_PATTERN, 'must be a group name (a letter, then letters, digits or _)'), v.description('The group this peer admits itself to.')),
              partitions: v.optional(v.pipe(v.array(v.string('must be a partition value (a string)'), 'must be an array of partition values (strings)'), v.description("This peer's own partitions (what rules granting \"own\" mean).")), []),
              days: v.optional(v.pipe(integerIn(1, MAX_ADMISSION_DAYS), v.description('How long its admission is valid, in days.')), DEFAULT_ADMISSION_DAYS),
              name: v.optional(v.pipe(v.string('must be a non-empty string'), v.nonEmpty('must be a non-empty string'), v.description("The mesh's name, for people."))),
            },
            'must be an object { authority, rules, group, partitions?, days?, name? }',
          ),
          v.description('Create the mesh on first start, when the member folder does not exist yet, and admit this peer to it.'),
        ),
      ),
      null,
    ),
  },
  'must be an object { dir, create? }',
)
/** What the message says when `mesh` is neither a path nor an object. */
const MESH_SHAPE = v.union([MEMBER_FOLDER, MESH_CREATE], 'must be a member folder path, or { "dir": …, "create": { … } }')

const CONFIG_FIELDS = {
  $schema: v.optional(v.pipe(v.string('must be a path or URL'), v.description(`The JSON Schema of this file (./${CONFIG_SCHEMA_FILE}), for editor completion; shoal ignores it.`))),
  name: v.optional(v.pipe(v.nullable(v.pipe(v.string('must be a non-empty string'), v.nonEmpty('must be a non-empty string'))), v.description('A label for logs and status.')), null),
  data: v.optional(
    v.pipe(v.string('must be a folder path'), v.nonEmpty('must be a folder path'), v.description("Data folder (LevelDB, the peer's key, known peers), relative to the directory shoal runs in.")),
    DEFAULT_DATA_DIR,
  ),
  tables: v.optional(
    v.pipe(
      v.array(TABLE_DEFINITION, 'must be an array of table schemas'),
      v.check(
        (tables) => new Set(tables.map((t) => t.name)).size === tables.length,
        (issue) => `defines table '${issue.input.map((t) => t.name).find((n, i, names) => names.indexOf(n) !== i)}' twice`,
      ),
      v.description('Tables this peer defines at start (existing tables are extended with new columns, never narrowed).'),
    ),
    [],
  ),
  listen: v.optional(multiaddrs('libp2p multiaddrs to listen on. Default: TCP and WebSockets on all interfaces, ports chosen by the OS.'), DEFAULT_LISTEN),
  bootstrap: v.optional(multiaddrs('Multiaddrs ending in /p2p/<peer id> of peers to join through (shoal start prints its own).'), []),
  mdns: v.optional(flag('Discover peers on the LAN by mDNS.'), true),
  deflate: v.optional(flag('Deflate anti-entropy pages (/shoal/sync/1.1.0, and 1.2.0, which also reconciles by the change feed: what changed since the last round) with peers that allow it too, and gossip messages on topics whose every subscriber reads them: on row data 2-9x fewer bytes, ~2 ms of CPU per 256 KiB page. Deflated gossip is read either way. Off, rounds use /shoal/sync/1.2.0-plain: the change feed, in plain frames.'), true),
  carries: v.optional(
    v.pipe(
      entriesOf(
        v.string(),
        v.array(v.string('must be a partition value (a string)'), 'must be an array of partition values (strings)'),
        'must be an object of table → [partitions]',
      ),
      v.description("Partial replication: table → the only partitions of it this peer receives and stores (e.g. a store's own store). Tables not listed are carried whole."),
    ),
    {},
  ),
  http: v.optional(
    v.pipe(
      v.union([hostPort(), v.literal(false), v.null()], 'must be "HOST:PORT" or false'),
      v.transform((http) => (http === false ? null : http)),
      v.description('Address of the local HTTP API, "HOST:PORT" (port 0: any free port), or false for none. Default: loopback, any free port.'),
    ),
    DEFAULT_HTTP,
  ),
  httpHosts: v.optional(
    v.pipe(
      v.array(hostPort(), 'must be an array of "name:port" strings'),
      v.description(
        'More Host header values the HTTP API accepts, as "name:port" (e.g. "shoal.local:7001"), besides its own address (127.0.0.1, localhost, [::1] and the listen host, at its port). Any other Host is refused, so a web page on a domain re-pointed at this machine (DNS rebinding) cannot use the API.',
      ),
    ),
    [],
  ),
  httpOrigins: v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.string(originMessage),
          v.check((o) => canonicalOrigin(o) !== null, originMessage),
          v.transform((o) => canonicalOrigin(o)!),
        ),
        'must be an array of web origins',
      ),
      v.description('Web origins (e.g. "https://app.example") whose pages may call the HTTP API from a browser (CORS). Requests with any other Origin header are refused. Default: none.'),
    ),
    [],
  ),
  metricsPublic: v.optional(flag('Serve GET /metrics without the HTTP API token, for scrapers that cannot send one (it shows row counts and traffic totals, no row data).'), false),
  relay: v.optional(flag('Serve as a circuit relay v2 so peers behind NAT can be reached through this one.'), false),
  ui: v.optional(
    flag(
      'Serve the web app (the stock board: each browser tab is a peer of its own, in IndexedDB) at <HTTP API>/ui/, ?store=ID for one store. Needs the HTTP API and a WebSocket address in "listen".',
    ),
    false,
  ),
  mesh: v.optional(
    v.pipe(
      v.nullable(v.lazy((input) => (typeof input === 'string' ? MEMBER_FOLDER : input !== null && typeof input === 'object' && !Array.isArray(input) ? MESH_CREATE : MESH_SHAPE))),
      v.description(
        'The private mesh this peer belongs to: its member folder (written by `shoal mesh admit`, relative to the data folder), or { "dir", "create" } to create the mesh on first start and admit this peer. Peers without the mesh\'s secret cannot connect.',
      ),
    ),
    null,
  ),
  open: v.optional(flag('Run without a mesh: anyone who reaches the libp2p port may read and write every table. Either this or "mesh" is required.'), false),
  // Checked here for its shape only: the SQL bridge (src/bridge/config.ts, a layer above this
  // file) validates it in full when the peer starts, with messages naming each bad field.
  bridge: v.optional(
    v.pipe(
      v.nullable(
        v.looseObject(
          {
            database: v.pipe(v.string('must be "sqlite:PATH", "postgres://USER@HOST:PORT/DB" or "mysql://USER@HOST:PORT/DB"'), v.description('sqlite:PATH, postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB')),
            tables: v.pipe(v.array(v.unknown(), 'must list the tables to mirror'), v.description('Shoal tables to mirror: a name, or { table, sql?, counters?, text?, json?, partitionBy?, engine? }')),
          },
          'must be an object { database, tables, … }',
        ),
      ),
      v.description('Mirror tables of a SQL database (SQLite, PostgreSQL, MySQL/MariaDB) both ways: { database, tables, pollMs?, batchRows?, retryMinMs?, retryMaxMs? } (README, "SQL bridge").'),
    ),
    null,
  ),
}

/** The config file's schema; peers/shoal-config.schema.json is generated from it. */
export const CONFIG_SCHEMA = v.pipe(
  fields(CONFIG_FIELDS, 'must be a JSON object'),
  v.check((c) => !(c.open === true && c.mesh != null), 'names both "mesh" and "open": true; a peer is in a private mesh or in an open one: remove one'),
  v.check((c) => !(c.ui === true && c.http === null), 'asks for the web app ("ui": true) with the HTTP API off ("http": false); the app is served by the HTTP API: give "http" an address'),
  v.title('Shoal peer config'), v.description('A Shoal peer: its tables, addresses, discovery, partial replication, mesh and HTTP API.'),
)

/** A validated config with defaults filled in. */
export type PeerConfig = Omit<v.InferOutput<typeof CONFIG_SCHEMA>, '$schema'>

/** Validates a parsed config object; every message names the file and the bad field. */
export function parseConfig(input: unknown, source: string): PeerConfig {
  const { $schema: _, ...config } = parseWith(CONFIG_SCHEMA, input, { source, what: 'the config', error: (message) => new ConfigError(message) })
  return config
}

export async function loadConfig(path: string): Promise<PeerConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`cannot read config file '${path}': ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`)
  }
  return parseConfigText(text, path)
}

/** Validates a config file's text (JSON); every message names `source` and the bad field. */
export function parseConfigText(text: string, source: string): PeerConfig {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`${source}: not valid JSON: ${(error as Error).message}`)
  }
  return parseConfig(parsed, source)
}
