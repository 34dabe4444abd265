import '../polyfill.js'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, DEFAULT_DATA_DIR, loadConfig, parseConfig, type PeerConfig } from '../config.js'
import { createNode, type ShoalNode } from '../net/node.js'
import { GossipReplicator } from '../peer/gossip-replicator.js'
import { ShoalError } from '../errors.js'
import { Shoal, type ShoalStatus } from '../shoal.js'
import { formatTable } from './format.js'

const USAGE = `Usage: shoal <command> [options]

Commands:
  start    run a peer: open its store, define the configured tables, join the mesh
           (libp2p; local changes are gossiped to peers), until Ctrl-C
  status   print tables, partitions, row counts and digests of a data folder
  check    verify every row, digest and count in a data folder
  help     show this help

Options:
  --config FILE   peer config (JSON), e.g. peers/hq.json
  --data DIR      data folder (default: the config's "data", else ./${DEFAULT_DATA_DIR})
  --listen ADDR   libp2p multiaddr to listen on (repeatable; replaces the config's)
  --bootstrap ADDR  peer multiaddr with /p2p/<id> to join through (repeatable)
  --no-mdns       do not discover peers on the LAN
  --json          machine-readable output (status, check)
  --version       print the version
`

class UsageError extends ShoalError {
  constructor(message: string) {
    super('USAGE', `${message}\n\n${USAGE}`)
  }
}

interface Options {
  config?: string
  data?: string
  listen?: string[]
  bootstrap?: string[]
  noMdns?: boolean
  json: boolean
}

async function resolveConfig(options: Options): Promise<PeerConfig> {
  const config: PeerConfig = options.config === undefined ? parseConfig({}, '(defaults)') : await loadConfig(options.config)
  return {
    ...config,
    ...(options.data === undefined ? {} : { data: options.data }),
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(options.bootstrap === undefined ? {} : { bootstrap: [...config.bootstrap, ...options.bootstrap] }),
    ...(options.noMdns ? { mdns: false } : {}),
  }
}

function printStatus(status: ShoalStatus, name: string | null): void {
  console.log(`peer    ${name ?? '(unnamed)'}  actor ${status.actor}`)
  console.log(`data    ${status.dir}`)
  if (status.tables.length === 0) {
    console.log('tables  none yet (define them in the config file or with defineTable())')
    return
  }
  console.log('')
  console.log(
    formatTable(
      ['TABLE', 'ENGINE', 'PARTITION BY', 'PARTITION', 'ROWS', 'DIGEST'],
      status.tables.flatMap((t) =>
        t.partitions.length === 0
          ? [[t.name, t.engine, t.partitionBy ?? '-', '-', '0', '-']]
          : t.partitions.map((p) => [t.name, t.engine, t.partitionBy ?? '-', p.partition === '' ? '-' : p.partition, String(p.rows), p.digest.slice(0, 16)]),
      ),
    ),
  )
}

async function openWithTables(config: PeerConfig): Promise<Shoal> {
  const db = await Shoal.open({ dir: resolve(config.data) })
  try {
    for (const schema of config.tables) await db.defineTable(schema)
  } catch (error) {
    await db.close()
    throw error
  }
  return db
}

async function start(options: Options): Promise<void> {
  const config = await resolveConfig(options)
  const db = await openWithTables(config)
  let node: ShoalNode
  try {
    node = await createNode({ dataDir: resolve(config.data), listen: config.listen, bootstrap: config.bootstrap, mdns: config.mdns })
  } catch (error) {
    await db.close()
    throw error
  }
  const replicator = new GossipReplicator(db, node, { carries: config.carries })
  replicator.start()
  printStatus(await db.status(), config.name)
  console.log(`\npeer id ${node.peerId.toString()}`)
  for (const addr of node.multiaddrs()) console.log(`listening on ${addr.toString()}`)
  console.log(`mDNS ${config.mdns ? 'on' : 'off'}; bootstrap: ${config.bootstrap.length === 0 ? 'none' : config.bootstrap.join(', ')}`)
  console.log('\nrunning; press Ctrl-C to stop')
  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      console.log(`\n${signal}: stopping…`)
      replicator.stop()
      node
        .stop()
        .then(() => db.close())
        .then(done, (error: unknown) => {
          console.error(`shoal: error while stopping: ${(error as Error).message}`)
          process.exitCode = 1
          done()
        })
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
  console.log('stopped cleanly')
}

/** Opens an existing data folder; reading commands never create one. */
async function openExisting(config: PeerConfig): Promise<Shoal> {
  const dir = resolve(config.data)
  if (!existsSync(dir)) throw new ConfigError(`no data folder at '${dir}'; start a peer with \`shoal start\` first, or pass --data`)
  return Shoal.open({ dir })
}

async function status(options: Options): Promise<void> {
  const config = await resolveConfig(options)
  const db = await openExisting(config)
  try {
    const s = await db.status()
    if (options.json) console.log(JSON.stringify(s, null, 2))
    else printStatus(s, config.name)
  } finally {
    await db.close()
  }
}

async function check(options: Options): Promise<void> {
  const config = await resolveConfig(options)
  const db = await openExisting(config)
  try {
    const report = await db.check()
    if (options.json) console.log(JSON.stringify(report, null, 2))
    else if (report.problems.length === 0) console.log(`ok: ${report.rows} rows, digests and counts consistent`)
    else {
      console.log(`${report.problems.length} problem(s) in ${report.rows} rows:`)
      for (const p of report.problems) console.log(`  ${p}`)
    }
    if (report.problems.length > 0) process.exitCode = 1
  } finally {
    await db.close()
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

export async function main(argv: string[]): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        data: { type: 'string' },
        listen: { type: 'string', multiple: true },
        bootstrap: { type: 'string', multiple: true },
        'no-mdns': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        version: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.version) {
    console.log(version())
    return
  }
  const [command, ...rest] = positionals
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE)
    return
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`)
  const options: Options = {
    json: values.json,
    noMdns: values['no-mdns'],
    ...(values.config === undefined ? {} : { config: values.config }),
    ...(values.data === undefined ? {} : { data: values.data }),
    ...(values.listen === undefined ? {} : { listen: values.listen }),
    ...(values.bootstrap === undefined ? {} : { bootstrap: values.bootstrap }),
  }
  switch (command) {
    case 'start':
      return start(options)
    case 'status':
      return status(options)
    case 'check':
      return check(options)
    default:
      throw new UsageError(`unknown command '${command}'`)
  }
}

export async function run(argv: string[]): Promise<void> {
  try {
    await main(argv)
  } catch (error) {
    if (error instanceof ShoalError) {
      console.error(`shoal: ${error.message}`)
      process.exitCode = error instanceof UsageError || error instanceof ConfigError ? 2 : 1
      return
    }
    console.error('shoal: unexpected error:', error)
    process.exitCode = 1
  }
}
