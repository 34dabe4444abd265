import '../polyfill.js'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ConfigError, DEFAULT_DATA_DIR, loadConfig, type PeerConfig } from '../config.js'
import { ShoalError } from '../errors.js'
import { Shoal, type ShoalStatus } from '../shoal.js'
import { formatTable } from './format.js'

const USAGE = `Usage: shoal <command> [options]

Commands:
  start    open the peer's store, define the configured tables, and run until Ctrl-C
  status   print tables, partitions, row counts and digests of a data folder
  check    verify every row, digest and count in a data folder
  help     show this help

Options:
  --config FILE   peer config (JSON), e.g. peers/hq.json
  --data DIR      data folder (default: the config's "data", else ./${DEFAULT_DATA_DIR})
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
  json: boolean
}

async function resolveConfig(options: Options): Promise<PeerConfig> {
  const config: PeerConfig = options.config === undefined ? { name: null, data: DEFAULT_DATA_DIR, tables: [] } : await loadConfig(options.config)
  return options.data === undefined ? config : { ...config, data: options.data }
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
  printStatus(await db.status(), config.name)
  console.log('\nrunning; press Ctrl-C to stop')
  await new Promise<void>((done) => {
    // An open LevelDB handle does not keep Node's event loop alive; this does, until a signal.
    const keepAlive = setInterval(() => undefined, 2 ** 30)
    const stop = (signal: string): void => {
      clearInterval(keepAlive)
      console.log(`\n${signal}: closing the store…`)
      db.close().then(done, (error: unknown) => {
        console.error(`shoal: error while closing: ${(error as Error).message}`)
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
  const options: Options = { json: values.json, ...(values.config === undefined ? {} : { config: values.config }), ...(values.data === undefined ? {} : { data: values.data }) }
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
