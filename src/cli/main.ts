import '../polyfill.js'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError, DEFAULT_DATA_DIR } from '../config.js'
import { ShoalError } from '../errors.js'
import { ApiError } from '../http/client.js'
import { check, status } from './local.js'
import type { MeshOptions } from './mesh.js'
import type { Options } from './options.js'
import { ArgumentError, REMOTE_VERBS, runRemote, type RemoteVerb } from './remote.js'

const USAGE = `Usage: shoal <command> [arguments] [options]

Run a peer:
  start    run a peer: open its store, define the configured tables, join the mesh
           (gossip and anti-entropy with other peers) and serve the HTTP API, until Ctrl-C;
           the config names its private mesh ("mesh": a member folder) or says "open": true
           (or --open: no mesh secret, anyone who reaches the port may read and write)

  demo     the retail example's stock board: a peer in an open mesh with sample products
           and two stores' stock, serving the web app (npm run demo); --data, --http
           and --listen as for start

Talk to a running peer (over its HTTP API):
  status                          live status of the running peer (peer id, addresses,
                                  connected peers, sync, tables); without a running peer,
                                  the data folder read directly
  get <table> <key>               one row
  put <table> <key> <json>        create the row or merge these columns into it,
                                  e.g. put stock 7:A1 '{"store": "7", "qty": 10}'
  delete <table> <key>            delete a row
  increment <table> <key> <column> [by]
                                  add 'by' (default 1, may be negative) to a counter
  edit <table> <key> <column> --index N [--delete N] [--insert TEXT]
                                  edit a text column in place: remove --delete characters
                                  at --index, then insert --insert there (positions in
                                  UTF-16 code units); concurrent edits on other peers merge
  scan <table>                    a page of rows (--partition, --after, --limit)
  define <table> <json|@file>     define a table, or add columns to it

Simulate:
  sim      run a partition simulation: peers, faults and workload from --scenario FILE
           (JSON or YAML, e.g. peers/scenarios/split-brain-stock.yaml) or --random; checks
           convergence and lost writes, writes summary.json and report.html, exits 1 on
           a violation with the command that replays it
           --seed N --peers N --mode model|real --duration MS --out DIR
           --time-scale X (real mode: wall ms per scenario ms, for busy machines)
           --sweep 10,100,1000 [--runs K]  convergence time and traffic vs peers
Private mesh (offline; the authority folder holds the mesh's key, keep it offline):
  id                              this peer's id (--data or --config; creates its key if missing)
  mesh create --dir DIR [--name N] [--rules FILE]
                                  a new mesh: writes the authority folder (authority key, mesh
                                  secret, rules); without --rules one group 'member' may do all
  mesh admit --authority DIR --peer ID --group G [--partitions 1,2] [--days N] --out MEMBERDIR
                                  sign an admission and write the member folder to give the peer
                                  (no authority key in it); or --config FILE instead of --peer and
                                  --out for a peer config on this machine (its partitions default
                                  to those it carries); or --link URL for a browser tab (the id its
                                  page shows): prints URL#join=<code> to open in that tab (the
                                  admission, rules and revocations; no mesh secret)
  mesh revoke --authority DIR --peer ID [--reason R] [--out MEMBERDIR]
                                  revoke every admission of a peer; --out puts the revocation in a
                                  member folder, from which it spreads through the mesh
  mesh rules --authority DIR --rules FILE [--out MEMBERDIR]
                                  sign new rules (version + 1) from a rules.json
  mesh show [--dir DIR | --data DIR | --config FILE]
                                  mesh id, this peer's group, partitions, admission expiry, rules
                                  version and rights, revocations; --dir: a member or an
                                  authority folder (the authority's: every peer admitted)

Offline:
  check    verify every row, digest and count of a data folder (stop its peer first)
  help     show this help

Options:
  --config FILE     peer config (JSON), e.g. peers/hq.json
  --data DIR        data folder (default: the config's "data", else ./${DEFAULT_DATA_DIR})
  --listen ADDR     libp2p multiaddr to listen on (repeatable; replaces the config's)
  --bootstrap ADDR  peer multiaddr with /p2p/<id> to join through (repeatable)
  --no-mdns         do not discover peers on the LAN
  --open            start: run an open mesh (as "open": true in the config)
  --ui              start: serve the web app at <HTTP API>/ui/ (as "ui": true); each browser
                    tab is a peer that joins through this one's WebSocket address
  --http HOST:PORT  start: where the HTTP API listens (replaces the config's "http";
                    'off' or --no-http: no API). Other commands: the API to talk to
                    (default: the address the peer wrote to <data>/api.json)
  --partition P     the row's partition (get, put, delete, increment, edit, scan)
  --after CURSOR    scan: continue after the 'next' cursor of the previous page
  --limit N         scan: rows per page (1 to 1000, default 100)
  --index N         edit: where the edit starts (0 = before the first character)
  --delete N        edit: characters to remove at --index (default 0)
  --insert TEXT     edit: text to insert at --index (default none)
  --json            machine-readable output (the API's JSON)
  --version         print the version

Environment:
  SHOAL_TOKEN       the HTTP API's token when the data folder's api.json does not give it
                    (e.g. with --http); \`start\` writes a new one to <data>/api.json (mode
                    0600) at every start, and the commands above read it from there
`

class UsageError extends ShoalError {
  constructor(message: string) {
    super('USAGE', `${message}\n\n${USAGE}`)
  }
}

const LOCAL_COMMANDS = ['start', 'demo', 'status', 'check', 'id']

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

function checkArity(command: string, rest: readonly string[], required: readonly string[], optional: readonly string[]): void {
  const shape = [...required.map((a) => `<${a}>`), ...optional.map((a) => `[${a}]`)].join(' ')
  if (rest.length < required.length) throw new UsageError(`${command} needs ${shape}; missing <${required[rest.length]}>`)
  if (rest.length > required.length + optional.length) throw new UsageError(`unexpected argument '${rest[required.length + optional.length]}' (${command} takes ${shape || 'no arguments'})`)
}

/**
 * parseArgs reads `-3` as an unknown short option, but `increment … qty -3` means a number; such
 * tokens are masked while parsing and restored after (shoal has no short options besides -h).
 */
const NEGATIVE_NUMBER = /^-\d/
const MASK = '\u0001'
const unmask = (value: string): string => (value.startsWith(MASK) ? value.slice(MASK.length) : value)

export async function main(argv: string[]): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv.map((a) => (NEGATIVE_NUMBER.test(a) ? MASK + a : a)),
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        data: { type: 'string' },
        listen: { type: 'string', multiple: true },
        bootstrap: { type: 'string', multiple: true },
        'no-mdns': { type: 'boolean', default: false },
        open: { type: 'boolean', default: false },
        http: { type: 'string' },
        'no-http': { type: 'boolean', default: false },
        ui: { type: 'boolean', default: false },
        partition: { type: 'string' },
        after: { type: 'string' },
        limit: { type: 'string' },
        index: { type: 'string' },
        delete: { type: 'string' },
        insert: { type: 'string' },
        json: { type: 'boolean', default: false },
        scenario: { type: 'string' },
        random: { type: 'boolean', default: false },
        peers: { type: 'string' },
        seed: { type: 'string' },
        mode: { type: 'string' },
        duration: { type: 'string' },
        sweep: { type: 'string' },
        runs: { type: 'string' },
        out: { type: 'string' },
        'time-scale': { type: 'string' },
        dir: { type: 'string' },
        name: { type: 'string' },
        rules: { type: 'string' },
        authority: { type: 'string' },
        peer: { type: 'string' },
        group: { type: 'string' },
        partitions: { type: 'string' },
        days: { type: 'string' },
        link: { type: 'string' },
        reason: { type: 'string' },
        version: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const values = Object.fromEntries(
    Object.entries(parsed.values).map(([name, value]) => [name, typeof value === 'string' ? unmask(value) : Array.isArray(value) ? value.map(unmask) : value]),
  ) as typeof parsed.values
  const positionals = parsed.positionals.map(unmask)
  if (values.version) {
    console.log(version())
    return
  }
  const [command, ...rest] = positionals
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE)
    return
  }
  const options: Options = {
    json: values.json,
    noMdns: values['no-mdns'],
    open: values.open,
    noHttp: values['no-http'],
    ui: values.ui,
    ...(values.config === undefined ? {} : { config: values.config }),
    ...(values.data === undefined ? {} : { data: values.data }),
    ...(values.listen === undefined ? {} : { listen: values.listen }),
    ...(values.bootstrap === undefined ? {} : { bootstrap: values.bootstrap }),
    ...(values.http === undefined ? {} : { http: values.http }),
    ...(values.partition === undefined ? {} : { partition: values.partition }),
    ...(values.after === undefined ? {} : { after: values.after }),
    ...(values.limit === undefined ? {} : { limit: values.limit }),
    ...(values.index === undefined ? {} : { index: values.index }),
    ...(values.delete === undefined ? {} : { delete: values.delete }),
    ...(values.insert === undefined ? {} : { insert: values.insert }),
  }
  if (command === 'sim') {
    checkArity('sim', rest, [], [])
    const { sim } = await import('./sim.js')
    const pick = (name: 'scenario' | 'peers' | 'seed' | 'mode' | 'duration' | 'sweep' | 'runs' | 'out'): Record<string, string> => (values[name] === undefined ? {} : { [name]: values[name] as string })
    const timeScale = values['time-scale'] === undefined ? {} : { timeScale: values['time-scale'] }
    return sim({ json: values.json, random: values.random, ...timeScale, ...pick('scenario'), ...pick('peers'), ...pick('seed'), ...pick('mode'), ...pick('duration'), ...pick('sweep'), ...pick('runs'), ...pick('out') })
  }
  if (command === 'mesh') {
    checkArity('mesh', rest, [], ['verb'])
    const { mesh } = await import('./mesh.js')
    const flags = Object.fromEntries((['dir', 'name', 'rules', 'authority', 'peer', 'group', 'partitions', 'days', 'reason', 'out', 'link'] as const).flatMap((k) => (values[k] === undefined ? [] : [[k, values[k]]]))) as MeshOptions
    return mesh(rest[0], options, flags)
  }
  if (Object.hasOwn(REMOTE_VERBS, command)) {
    const verb = command as RemoteVerb
    checkArity(verb, rest, REMOTE_VERBS[verb].args, REMOTE_VERBS[verb].optional)
    return runRemote(verb, rest, options)
  }
  if (!LOCAL_COMMANDS.includes(command)) throw new UsageError(`unknown command '${command}'`)
  checkArity(command, rest, [], [])
  switch (command) {
    case 'start': {
      // Loaded only here: the other commands need not pay for loading libp2p.
      const { start } = await import('./start.js')
      return start(options)
    }
    case 'demo': {
      const { demo } = await import('./demo.js')
      return demo(options)
    }
    case 'status':
      return status(options)
    case 'check':
      return check(options)
    case 'id': {
      const { id } = await import('./mesh.js')
      return id(options)
    }
    default:
      throw new UsageError(`unknown command '${command}'`)
  }
}

export async function run(argv: string[]): Promise<void> {
  try {
    await main(argv)
  } catch (error) {
    if (error instanceof ApiError) {
      console.error(`shoal: ${error.message} (${error.code})`)
      process.exitCode = 1
      return
    }
    if (error instanceof ShoalError) {
      console.error(`shoal: ${error.message}`)
      process.exitCode = error instanceof UsageError || error instanceof ConfigError || error instanceof ArgumentError || error.code === 'SCENARIO_INVALID' || error.code === 'USAGE' ? 2 : 1
      return
    }
    console.error('shoal: unexpected error:', error)
    process.exitCode = 1
  }
}
