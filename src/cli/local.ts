import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { ConfigError, type PeerConfig } from '../config.js'
import { StoreOpenError } from '../errors.js'
import { ApiUnreachableError, ShoalClient } from '../http/client.js'
import { Shoal } from '../shoal.js'
import { explainRefusal, findApi, runningPeer } from './api-target.js'
import { formatOfflineStatus, formatPeerStatus } from './format.js'
import { resolveConfig, type Options } from './options.js'

/** Opens an existing data folder; reading commands never create one. */
async function openExisting(config: PeerConfig): Promise<Shoal> {
  const dir = resolve(config.data)
  if (!existsSync(dir)) throw new ConfigError(`no data folder at '${dir}'; start a peer with \`shoal start\` first, or pass --data`)
  return Shoal.open({ dir })
}

/**
 * `shoal status`: the live status of the peer running on the data folder when there is one
 * (the folder is locked then), else the folder read directly.
 */
export async function status(options: Options): Promise<void> {
  const config = await resolveConfig(options)
  const target = await findApi(options, config)
  if (target !== null) {
    try {
      const live = await new ShoalClient(target.url, { token: target.token }).status()
      console.log(options.json ? JSON.stringify(live, null, 2) : formatPeerStatus(live))
      return
    } catch (error) {
      // Only an address found by looking around may be stale; one given with --http must answer.
      if (!(error instanceof ApiUnreachableError) || options.http !== undefined) throw explainRefusal(error, target.via)
    }
  }
  const db = await openExisting(config)
  try {
    const s = await db.status()
    console.log(options.json ? JSON.stringify(s, null, 2) : formatOfflineStatus(s, config.name))
  } finally {
    await db.close()
  }
}

/** `shoal check`: offline only, as it re-reads every row of a folder it must have to itself. */
export async function check(options: Options): Promise<void> {
  const config = await resolveConfig(options)
  let db: Shoal
  try {
    db = await openExisting(config)
  } catch (error) {
    const running = error instanceof StoreOpenError ? await runningPeer(config.data) : null
    if (running === null) throw error
    throw new StoreOpenError(
      `data folder '${resolve(config.data)}' is in use by a running peer (pid ${running.pid}, HTTP API ${running.url}); ` +
        `\`shoal check\` reads the folder directly: stop the peer first (Ctrl-C, or kill -TERM ${running.pid}), then run check again ` +
        `(\`shoal status\` shows the running peer's live status)`,
      { cause: error },
    )
  }
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
