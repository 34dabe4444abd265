/*
 * OrbitDB baseline: @orbitdb/core 4 `documents` database (indexBy '_id') over Helia + libp2p, all
 * peers in this process. libp2p: TCP on 127.0.0.1 only, noise, yamux, identify, gossipsub (no mDNS,
 * no DHT, no bootstrap list); every peer i > 0 dials peer 0. Helia is built from @helia/utils'
 * `Helia` class with bitswap as the only block broker and libp2p routing as the only router (the
 * `helia` package's createHelia() is NOT used: its defaults add trustless-gateway / delegated-HTTP
 * routing to public hosts, and its libp2p defaults import @libp2p/http -> undici 8, which crashes on
 * Node 20 at import time). Blocks in blockstore-level and OrbitDB's own LevelDB storage under
 * <dir>/peer<i>; datastore in memory.
 *
 * The database is created on peer 0 with IPFSAccessController({ write: ['*'] }) so every peer may
 * write, and opened by address on the others. OrbitDB has no batch write: each row is one oplog
 * entry (db.put, serialized by OrbitDB's own queue). `documents` keeps no key index: get()/all()
 * walk the whole oplog, so update() reads the peer's current docs once per call (one log walk) and
 * then puts each merged doc; count()/snapshot() are a log walk each.
 *
 * @orbitdb/core declares engines node >= 22; on Node 20 it needs only the Promise.withResolvers
 * polyfill (src/polyfill.ts, imported by the runner, bench/peers/run.ts, before any adapter). It ships no TypeScript types: the minimal ones used are declared below.
 *
 * Restart (stopPeer/startPeer, peers >= 1): stopPeer closes the db, OrbitDB, Helia, libp2p and the
 * blockstore of that peer and drops them; startPeer builds a new libp2p (new peer id) + Helia +
 * OrbitDB on the same folder (same OrbitDB identity from its keystore), dials peer 0 again, reopens
 * the db by address (oplog and blocks from disk) and resolves once both see each other on the db's
 * gossipsub topic; OrbitDB's head exchange + bitswap then bring the missed entries.
 */
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import { Helia } from '@helia/utils'
import { bitswap } from '@helia/block-brokers'
import { libp2pRouting } from '@helia/routers'
import { LevelBlockstore } from 'blockstore-level'
import { MemoryDatastore } from 'datastore-core'
import type { StockChange, StockRow, SystemAdapter } from '../adapter.js'

// ---- minimal types for the untyped @orbitdb/core ----
interface OrbitDoc {
  _id: string
  store: string
  sku: string
  qty: number
  shelf: string
}
interface OrbitDocEntry {
  hash: string
  key: string
  value: OrbitDoc
}
interface OrbitDocuments {
  readonly address: string
  put(doc: OrbitDoc): Promise<string>
  all(): Promise<OrbitDocEntry[]>
  close(): Promise<void>
}
interface OrbitDBInstance {
  open(address: string, options?: { type?: string; AccessController?: unknown }): Promise<OrbitDocuments>
  stop(): Promise<void>
}
interface OrbitModule {
  createOrbitDB(options: { ipfs: unknown; id?: string; directory?: string }): Promise<OrbitDBInstance>
  IPFSAccessController(options: { write: string[] }): unknown
}
// A non-literal specifier keeps TypeScript from looking for the package's (non-existent) types.
const ORBITDB_MODULE: string = '@orbitdb/core'
async function loadOrbit(): Promise<OrbitModule> {
  return (await import(ORBITDB_MODULE)) as OrbitModule
}

const DB_NAME = 'stock'
const CHUNK = 256

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function eventually(what: string, check: () => boolean | Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`orbitdb: timed out waiting for ${what}`)
    await sleep(20)
  }
}

interface OrbitPeer {
  libp2p: Libp2p<{ identify: unknown; pubsub: ReturnType<ReturnType<typeof gossipsub>> }>
  helia: { start(): Promise<void>; stop(): Promise<void> }
  blockstore: LevelBlockstore
  orbitdb: OrbitDBInstance
  db?: OrbitDocuments
}

function toDoc(r: StockRow): OrbitDoc {
  return { _id: r.id, store: r.store, sku: r.sku, qty: r.qty, shelf: r.shelf }
}

function toRow(d: OrbitDoc): StockRow {
  return { id: d._id, store: d.store, sku: d.sku, qty: d.qty, shelf: d.shelf }
}

export class OrbitDBAdapter implements SystemAdapter {
  readonly name = 'orbitdb'
  readonly topology = 'libp2p TCP on 127.0.0.1, every peer dials peer 0; gossipsub + OrbitDB head exchange; bitswap for entries'
  readonly notes =
    '@orbitdb/core 4.0.0 documents db over @helia/utils Helia (bitswap only, libp2p routing only), ' +
    'blockstore-level + OrbitDB LevelDB on disk; one oplog entry per row (no batch API), puts issued in ' +
    `concurrent chunks of ${CHUNK} (OrbitDB serializes them); update = one log walk + put of the merged doc; ` +
    'count/snapshot walk the oplog (documents has no key index)'
  /** Index = peer; `undefined` while that peer is stopped by stopPeer() (everything of it dropped). */
  private peers: Array<OrbitPeer | undefined> = []
  private offline = new Set<number>()
  private dir = ''
  private address = ''
  private stopped = false

  /** Builds one peer (libp2p + Helia + OrbitDB) on <dir>/peer<i>; peers i > 0 dial peer 0. */
  private async createPeer(i: number): Promise<OrbitPeer> {
    const { createOrbitDB } = await loadOrbit()
    const data = join(this.dir, `peer${i}`)
    await mkdir(data, { recursive: true })
    const libp2p = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }),
      },
    })
    const blockstore = new LevelBlockstore(join(data, 'blocks'))
    const helia = new Helia({
      libp2p,
      blockstore,
      datastore: new MemoryDatastore(),
      blockBrokers: [bitswap()],
      routers: [libp2pRouting(libp2p)],
      metrics: libp2p.metrics,
    } as unknown as ConstructorParameters<typeof Helia>[0])
    await helia.start()
    const orbitdb = await createOrbitDB({ ipfs: helia, id: `peer${i}`, directory: join(data, 'orbitdb') })
    const peer: OrbitPeer = { libp2p, helia, blockstore, orbitdb }
    if (i > 0) {
      try {
        const first = this.peer(0).libp2p.getMultiaddrs()[0]
        if (first === undefined) throw new Error('orbitdb: peer 0 has no listen address')
        await libp2p.dial(first)
      } catch (e) {
        await closePeer(peer)
        throw e
      }
    }
    return peer
  }

  async start(peers: number, dir: string): Promise<void> {
    const { IPFSAccessController } = await loadOrbit()
    this.dir = dir
    for (let i = 0; i < peers; i++) {
      this.peers.push(await this.createPeer(i))
    }
    const p0 = this.peer(0)
    p0.db = await p0.orbitdb.open(DB_NAME, { type: 'documents', AccessController: IPFSAccessController({ write: ['*'] }) })
    const address = p0.db.address
    this.address = address
    for (let i = 1; i < peers; i++) {
      const p = this.peer(i)
      p.db = await p.orbitdb.open(address)
    }
    // Ready when peer 0 sees every other peer subscribed to the db topic and each other peer sees peer 0.
    const subscribers = (p: OrbitPeer): number => p.libp2p.services.pubsub.getSubscribers(address).length
    await eventually('gossip mesh', () =>
      this.peers.every((p, i) => p !== undefined && subscribers(p) >= (i === 0 ? peers - 1 : Math.min(1, peers - 1))),
    )
  }

  private peer(i: number): OrbitPeer {
    if (this.offline.has(i)) throw new Error(`orbitdb: peer ${i} is stopped (stopPeer)`)
    const p = this.peers[i]
    if (p === undefined) throw new Error(`orbitdb: no peer ${i}`)
    return p
  }

  async stopPeer(peer: number): Promise<void> {
    if (peer === 0) throw new Error('orbitdb: stopPeer(0) not supported (peer 0 created the db and is the bootstrap peer)')
    if (this.offline.has(peer)) throw new Error(`orbitdb: peer ${peer} is already stopped`)
    const p = this.peer(peer)
    this.offline.add(peer)
    this.peers[peer] = undefined
    await closePeer(p)
  }

  async startPeer(peer: number): Promise<void> {
    if (!this.offline.has(peer)) throw new Error(`orbitdb: peer ${peer} is not stopped`)
    if (this.stopped) throw new Error('orbitdb: adapter stopped')
    const p0 = this.peer(0)
    const p = await this.createPeer(peer)
    try {
      p.db = await p.orbitdb.open(this.address) // oplog + manifest from this peer's folder
      // Ready when peer 0 sees this peer on the db topic again (its subscription triggers OrbitDB's
      // head exchange) and this peer sees peer 0.
      const me = p.libp2p.peerId.toString()
      await eventually('gossip mesh after restart', () =>
        p.libp2p.services.pubsub.getSubscribers(this.address).length >= 1 &&
        p0.libp2p.services.pubsub.getSubscribers(this.address).some((id) => id.toString() === me),
      )
    } catch (e) {
      await closePeer(p)
      throw e
    }
    this.peers[peer] = p
    this.offline.delete(peer)
  }

  private db(i: number): OrbitDocuments {
    const db = this.peer(i).db
    if (db === undefined) throw new Error(`orbitdb: peer ${i} has no open database`)
    return db
  }

  async insert(peer: number, rows: readonly StockRow[]): Promise<void> {
    const db = this.db(peer)
    for (let i = 0; i < rows.length; i += CHUNK) {
      await Promise.all(rows.slice(i, i + CHUNK).map((r) => db.put(toDoc(r))))
    }
  }

  async update(peer: number, changes: readonly StockChange[]): Promise<void> {
    const db = this.db(peer)
    const current = new Map<string, OrbitDoc>()
    for (const e of await db.all()) current.set(e.key, e.value)
    const merged: OrbitDoc[] = []
    for (const c of changes) {
      const doc = current.get(c.id)
      if (doc === undefined) throw new Error(`orbitdb: update of unknown row ${c.id} on peer ${peer}`)
      const next: OrbitDoc = { ...doc, ...c.values }
      current.set(c.id, next)
      merged.push(next)
    }
    for (let i = 0; i < merged.length; i += CHUNK) {
      await Promise.all(merged.slice(i, i + CHUNK).map((d) => db.put(d)))
    }
  }

  async count(peer: number): Promise<number> {
    return (await this.db(peer).all()).length
  }

  async snapshot(peer: number): Promise<StockRow[]> {
    return (await this.db(peer).all()).map((e) => toRow(e.value))
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.offline.clear()
    for (const p of this.peers.splice(0)) {
      if (p !== undefined) await closePeer(p) // undefined: stopped by stopPeer(), already closed
    }
  }
}

async function closePeer(p: OrbitPeer): Promise<void> {
  try {
    await p.db?.close()
  } catch {
    /* closing anyway */
  }
  await p.orbitdb.stop()
  await p.helia.stop()
  await p.libp2p.stop()
  await p.blockstore.close()
}

export function createAdapter(): SystemAdapter {
  return new OrbitDBAdapter()
}

export default createAdapter
