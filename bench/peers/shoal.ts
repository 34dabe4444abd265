import { callbackLogger } from '../../src/log.js'
/*
 * Shoal adapter: real Peers (src/peer/peer.ts) as `shoal start` runs them — LevelDB store, libp2p
 * over TCP on 127.0.0.1, gossip + anti-entropy — all in this process, every peer bootstrapping to
 * peer 0 (as test/peer/mesh.test.ts does). Table `stock` (engine from --shoal-engine, yjs by default), partitioned by store.
 * Writes go through peer.db.table('stock').put/update in concurrent chunks of 4096
 * (= MAX_WRITES_PER_BATCH: one chunk ≈ one LevelDB batch, group commit).
 */
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { parseConfig, type PeerConfig } from '../../src/config.js'
import { Peer } from '../../src/peer/peer.js'
import { topicFor } from '../../src/sync/gossip.js'
import { eventually } from '../lib/poll.js'
import type { StockChange, StockRow, SystemAdapter } from './adapter.js'
import { SHOAL_ENGINE } from './config.js'

const TABLE = 'stock'
const CHUNK = 4096
const SCAN_PAGE = 10_000

const TABLES = [
  {
    name: TABLE,
    primaryKey: 'id',
    partitionBy: 'store',
    engine: SHOAL_ENGINE,
    columns: { id: 'string', store: 'string', sku: 'string', qty: 'number', shelf: 'string' },
  },
]

async function chunked<T>(items: readonly T[], each: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    await Promise.all(items.slice(i, i + CHUNK).map(each))
  }
}

export class ShoalAdapter implements SystemAdapter {
  readonly name = 'shoal'
  readonly topology = 'libp2p TCP on 127.0.0.1, every peer bootstraps to peer 0; gossipsub + anti-entropy (default interval)'
  readonly notes = `Peer (src/peer/peer.ts), table 'stock' engine ${SHOAL_ENGINE} partitioned by store, LevelDB; writes via table.put/update in concurrent chunks of ${CHUNK}`
  private peers: Array<Peer | null> = []
  private configs: PeerConfig[] = []
  readonly logs: string[] = []

  async start(peers: number, dir: string): Promise<void> {
    for (let i = 0; i < peers; i++) {
      const data = join(dir, `peer${i}`)
      await mkdir(data, { recursive: true })
      this.configs.push({
        ...parseConfig({ tables: TABLES, carries: {}, open: true }, `bench-peer${i}`),
        data,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: i === 0 ? [] : [this.peer(0).node.multiaddrs()[0]!.toString()],
        mdns: false,
        http: null,
      })
      this.peers.push(await this.launch(i))
    }
    // Ready when every peer sees all the others on the catalog topic (gossip mesh formed).
    await eventually('gossip mesh', () =>
      this.peers.every((p) => p !== null && p.node.pubsub.getSubscribers(topicFor('_tables', '')).length >= peers - 1),
      30_000,
    )
  }

  private launch(i: number): Promise<Peer> {
    return Peer.start(this.configs[i]!, {
      logger: callbackLogger((_level, m) => this.logs.push(m)),
      // Pubsub peer discovery at its default (a minute; a peer joining the topic is told at once):
      // the 1-s interval once used here put ~1 KB/s of announcements into the steady-state figure.
      net: { redial: { minDelayMs: 200, maxDelayMs: 1_000 } },
      sync: { connectDelayMs: 100 },
    })
  }

  private peer(i: number): Peer {
    const p = this.peers[i]
    if (p === undefined) throw new Error(`shoal: no peer ${i}`)
    if (p === null) throw new Error(`shoal: peer ${i} is offline (stopPeer)`)
    return p
  }

  async stopPeer(i: number): Promise<void> {
    if (i === 0) throw new Error('shoal: peer 0 is everyone\'s bootstrap peer; take another one offline')
    const p = this.peer(i)
    this.peers[i] = null
    await p.stop()
  }

  /** A fresh Peer on the same folder (same key, same LevelDB); it redials peer 0 and anti-entropy catches it up. */
  async startPeer(i: number): Promise<void> {
    if (this.peers[i] !== null) throw new Error(`shoal: peer ${i} is running`)
    const p = await this.launch(i)
    this.peers[i] = p
    const id = p.node.peerId.toString()
    const catalog = topicFor('_tables', '')
    await eventually(`peer ${i} reconnected`, () =>
      p.node.pubsub.getSubscribers(catalog).length > 0 && this.peer(0).node.pubsub.getSubscribers(catalog).some((s) => s.toString() === id),
      30_000,
    )
  }

  async insert(peer: number, rows: readonly StockRow[]): Promise<void> {
    const t = this.peer(peer).db.table(TABLE)
    await chunked(rows, (r) => t.put(r.id, { store: r.store, sku: r.sku, qty: r.qty, shelf: r.shelf }))
  }

  async update(peer: number, changes: readonly StockChange[]): Promise<void> {
    const t = this.peer(peer).db.table(TABLE)
    await chunked(changes, (c) => t.update(c.id, { ...c.values }))
  }

  async count(peer: number): Promise<number> {
    return this.peer(peer).db.replication().rowCount(TABLE)
  }

  async snapshot(peer: number): Promise<StockRow[]> {
    const t = this.peer(peer).db.table(TABLE)
    const out: StockRow[] = []
    let after: string | undefined
    for (;;) {
      const page = await t.scan(after === undefined ? { limit: SCAN_PAGE } : { limit: SCAN_PAGE, after })
      for (const r of page.rows) out.push(r as unknown as StockRow)
      if (page.next === null) break
      after = page.next
    }
    return out
  }

  /** The partition digests (digest-tree roots) of the stock table: in memory, no row reads. */
  async fingerprint(peer: number): Promise<string> {
    const t = (await this.peer(peer).db.status()).tables.find((x) => x.name === TABLE)
    return JSON.stringify((t?.partitions ?? []).map((p) => [p.partition, p.rows, p.digest]))
  }

  async stop(): Promise<void> {
    for (const p of this.peers.splice(0)) if (p !== null) await p.stop()
  }
}

export function createAdapter(): SystemAdapter {
  return new ShoalAdapter()
}
