import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import { afterEach } from 'vitest'
import { parseConfig, type PeerConfig } from '../../src/config.js'
import { MemoryLogger } from '../../src/log.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { Peer, type PeerOptions } from '../../src/peer/peer.js'
import { MAX_FRAME_BYTES, SYNC_PROTOCOL } from '../../src/sync/sync-messages.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * Real peers for tests: libp2p over TCP on 127.0.0.1 only (mDNS off), LevelDB in temp folders,
 * stopped after each test; and bare libp2p nodes that speak Shoal's protocols by hand.
 */

export interface TestPeer {
  peer: Peer
  logger: MemoryLogger
  dir: string
}

const peers: TestPeer[] = []
const bare: ShoalNode[] = []

afterEach(async () => {
  for (const p of peers.splice(0)) await p.peer.stop()
  for (const n of bare.splice(0)) await n.stop()
})

export interface StartOptions extends Omit<PeerOptions, 'logger'> {
  dir?: string
  bootstrap?: string[]
  carries?: Record<string, string[]>
  tables?: unknown[]
  /** Serve the HTTP API here ('127.0.0.1:0' for any free port). */
  http?: string
  /** Listen addresses (default: TCP on 127.0.0.1, any port). */
  listen?: string[]
  /** Serve the web app (needs `http`; `uiDir` says where it was built). */
  ui?: boolean
  /** Serve as a circuit relay (config `relay`). */
  relay?: boolean
}

export async function startPeer(options: StartOptions): Promise<TestPeer> {
  const dir = options.dir ?? (await tempDir())
  const config: PeerConfig = {
    ...parseConfig({ tables: options.tables ?? [], carries: options.carries ?? {}, open: true, ui: options.ui ?? false, relay: options.relay ?? false, http: options.http ?? '127.0.0.1:0' }, 'test'),
    data: dir,
    listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: options.bootstrap ?? [],
    mdns: false,
    http: options.http ?? null,
  }
  const logger = new MemoryLogger()
  const { dir: _dir, bootstrap: _b, carries: _c, tables: _t, http: _h, listen: _l, ui: _u, relay: _r, ...rest } = options
  const peer = await Peer.start(config, {
    net: { discoveryIntervalMs: 1_000, redial: { minDelayMs: 200, maxDelayMs: 1_000 } },
    ...rest,
    sync: { intervalMs: 0, connectDelayMs: 100, ...rest.sync },
    logger,
  })
  const p = { peer, logger, dir }
  peers.push(p)
  return p
}

export async function stopPeer(p: TestPeer): Promise<void> {
  await p.peer.stop()
  peers.splice(peers.indexOf(p), 1)
}

export function addressOf(p: TestPeer): string {
  return p.peer.node.multiaddrs()[0]!.toString()
}

/** A libp2p node with no Shoal replication on it: the attacker of hostile-peer tests. */
export async function bareNode(dial?: TestPeer): Promise<ShoalNode> {
  const node = await createNode({ dataDir: join(await tempDir(), 'bare'), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  bare.push(node)
  if (dial !== undefined) await node.dial(addressOf(dial))
  return node
}

/** Sends raw frames on one sync stream (`protocol`: 1.0.0 unless said), then reads up to `replies` answers (fewer if the stream closes). */
export async function exchange(from: ShoalNode, to: TestPeer, frames: Uint8Array[], replies = 1, protocol = SYNC_PROTOCOL): Promise<Uint8Array[]> {
  const stream = await from.libp2p.dialProtocol(to.peer.node.peerId, protocol)
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES * 2 })
  const out: Uint8Array[] = []
  try {
    for (const f of frames) await lp.write(f)
    for (let i = 0; i < replies; i++) out.push((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray())
  } catch {
    // the peer closed the stream: what was read is the answer
  } finally {
    stream.abort(new Error('done'))
  }
  return out
}

/** Polls `check` until it holds, failing after `deadlineMs` (never a fixed sleep). */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
