import type { PeerConfig } from '../config.js'
import { Peer } from '../peer/peer.js'
import { formatOfflineStatus } from './format.js'
import { resolveConfig, type Options } from './options.js'
import { LoadProgressView } from './progress.js'

/** How often the sync status is read, for loads that end without a final report (a failed round). */
const SETTLE_INTERVAL_MS = 1000

/** `shoal start`: runs a peer until SIGINT / SIGTERM, then stops it cleanly. */
export async function start(options: Options): Promise<void> {
  await runPeer(await resolveConfig(options))
}

/** Runs a peer with this config until SIGINT / SIGTERM; `ready` may prepare it and add lines to the banner. */
export async function runPeer(config: PeerConfig, ready?: (peer: Peer) => Promise<string[]>): Promise<void> {
  const peer = await Peer.start(config)
  const view = new LoadProgressView(process.stderr)
  peer.sync.onProgress = (p) => view.update(p)
  // The SQL bridge's initial load (rows imported from the database), in a view of its own.
  const sqlView = new LoadProgressView(process.stderr)
  if (peer.bridge !== null) {
    peer.bridge.onProgress = (p) => sqlView.update({ table: p.table, partition: '', from: 'SQL', received: p.done, expected: p.total, done: p.finished })
  }
  const settle = setInterval(() => view.settle(peer.sync.status().loading), SETTLE_INTERVAL_MS)

  let tables: string
  let more: string[] = []
  try {
    if (ready !== undefined) more = await ready(peer)
    tables = formatOfflineStatus(await peer.db.status(), config.name)
  } catch (error) {
    clearInterval(settle)
    await peer.stop()
    throw error
  }
  console.log(tables)
  console.log(`\npeer id ${peer.node.peerId.toString()}`)
  for (const addr of peer.node.multiaddrs()) console.log(`listening on ${addr.toString()}`)
  console.log(peer.http === null ? 'HTTP API off' : `HTTP API ${peer.http.url}`)
  if (config.ui && peer.http !== null) console.log(`web app ${peer.http.url}/ui/ (add ?store=ID for one store's rows)`)
  console.log(`mDNS ${config.mdns ? 'on' : 'off'}; bootstrap: ${config.bootstrap.length === 0 ? 'none' : config.bootstrap.join(', ')}`)
  // In the banner (stdout), so it sits beside the addresses it is about.
  if (peer.trust === null) console.log('mesh OPEN ("open": true); warning: anyone who reaches the libp2p port may read and write every table; name a member folder in "mesh" for a private mesh (peers/README.md)')
  else console.log(`mesh ${peer.trust.mesh} (private: TCP needs the mesh secret; every peer, browser tabs over WebSockets too, is served only once its admission checks out)`)
  if (peer.bridge !== null) console.log(`SQL bridge ${peer.bridge.label}: ${peer.bridge.tableList().join(', ')}`)
  for (const line of more) console.log(line)
  console.log('\nrunning; press Ctrl-C to stop')

  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
  })
  clearInterval(settle)
  view.clearBar()
  sqlView.clearBar()
  console.log(`\n${signal}: stopping…`)
  try {
    await peer.stop()
  } catch (error) {
    console.error(`shoal: error while stopping: ${(error as Error).message}`)
    process.exitCode = 1
    return
  }
  console.log('stopped cleanly')
}
