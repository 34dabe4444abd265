/*
 * GUN baseline: `gun` 0.2020.1241 (the npm "latest"), all peers in this process. Peer 0 is GUN's
 * recommended relay: an http.Server on 127.0.0.1 with Gun({ web: server }) (WebSocket via `ws`);
 * peers 1..n-1 connect with peers: ['http://127.0.0.1:PORT/gun'] (hub topology, as GUN is deployed).
 * Storage: radisk (RFS) under <dir>/peer<i>. Multicast (UDP 233.255.255.255:8765, on by default in
 * Node), AXE, stats (writes into node_modules/gun) and localStorage are switched off.
 *
 * Layout: gun.get('stock').get(id).put({id, store, sku, qty, shelf}) — one GUN node per row, linked
 * from the 'stock' node. GUN has no transactions/batches: every row is one put; insert()/update()
 * issue puts in chunks of CHUNK and resolve when each put has been acked (first ack: local radisk write or a peer).
 * Updates put only the changed field (GUN merges per field, HAM). GUN replicates on demand, so start()
 * subscribes every peer with gun.get('stock').map().on(...) — the normal way to follow a set.
 * count()/snapshot() read the peer's in-memory graph (root._.graph), no network.
 *
 * GUN's npm types declare globals (a global `Gun`, String.match/random) and make the chain API hard
 * to type; this file loads it with createRequire and declares the few members it uses.
 * GUN has no close(): stop() drops every peer from opt.peers (which stops reconnects/heartbeats),
 * closes the client sockets, the ws server and the http server; internal one-shot timers (<= 20 s)
 * may still be pending afterwards.
 */
import { createRequire } from 'node:module'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import type { StockChange, StockRow, SystemAdapter } from './adapter.js'

// ---- minimal types for the parts of gun used here ----
interface GunAck {
  err?: string
  ok?: unknown
}
interface GunChain {
  get(key: string): GunChain
  put(data: Record<string, unknown>, ack?: (ack: GunAck) => void): GunChain
  map(): GunChain
  on(cb: (data: unknown, key: string) => void): GunChain
  off(): GunChain
}
interface GunWirePeer {
  id?: string
  url?: string
  wire?: { close?: () => void; terminate?: () => void }
}
interface GunRoot {
  graph: Record<string, Record<string, unknown> | undefined>
  opt: {
    peers: Record<string, GunWirePeer>
    ws?: { web?: { close(cb?: () => void): void; clients?: Set<{ terminate(): void }> } }
  }
}
type GunInstance = GunChain & { _: GunRoot }
type GunFactory = (opt: Record<string, unknown>) => GunInstance

const require = createRequire(import.meta.url)
let gunFactory: GunFactory | undefined
function loadGun(): GunFactory {
  if (gunFactory === undefined) {
    process.env['MULTICAST'] = 'false' // belt and braces with opt.multicast=false
    gunFactory = require('gun') as GunFactory
  }
  return gunFactory
}

const TABLE = 'stock'
const ROW_FIELDS = ['id', 'store', 'sku', 'qty', 'shelf'] as const
const ACK_TIMEOUT_MS = 120_000
// Puts in flight at once: issuing 10k puts at once makes GUN crawl (~25 rows/s, RSS > 4 GB).
const CHUNK = 500

function putAcked(chain: GunChain, data: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      reject(new Error('gun: put not acked in time'))
    }, ACK_TIMEOUT_MS)
    chain.put(data, (ack) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (ack.err) reject(new Error(`gun: put failed: ${ack.err}`))
      else resolve()
    })
  })
}

function refSoul(v: unknown): string | undefined {
  if (v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>)['#'] === 'string') {
    return (v as Record<string, string>)['#']
  }
  return undefined
}

export class GunAdapter implements SystemAdapter {
  readonly name = 'gun'
  readonly topology = 'GUN relay (http + ws) on peer 0 at 127.0.0.1, peers 1..n-1 connect to it'
  readonly notes =
    `gun 0.2020.1241, radisk on disk, one node per row under 'stock', one put per row/field change ` +
    `(no batches; puts issued in concurrent chunks of ${CHUNK}, each chunk awaited on its acks); every peer follows stock.map().on(); ` +
    'multicast/AXE/stats off; count/snapshot read the in-memory graph'
  private guns: GunInstance[] = []
  private server: Server | undefined
  private stopped = false

  async start(peers: number, dir: string): Promise<void> {
    const Gun = loadGun()
    const common = { multicast: false, axe: false, stats: false, localStorage: false }
    const server = createServer((_req, res) => {
      res.statusCode = 404
      res.end()
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const port = (server.address() as AddressInfo).port
    for (let i = 0; i < peers; i++) {
      const file = join(dir, `peer${i}`)
      await mkdir(file, { recursive: true })
      const gun =
        i === 0
          ? Gun({ ...common, web: server, file })
          : Gun({ ...common, file, peers: [`http://127.0.0.1:${port}/gun`] })
      // GUN only sends a peer what it asked for: follow the whole table on every peer.
      gun.get(TABLE).map().on(() => {})
      this.guns.push(gun)
    }
    // Ready when peer 0 has a wire to every other peer and each other peer's socket is open.
    const until = Date.now() + 30_000
    for (;;) {
      const hub = this.gun(0)._.opt.peers
      const connected = Object.values(hub).filter((p) => p.wire !== undefined).length
      const clientsOpen = this.guns.slice(1).every((g) =>
        Object.values(g._.opt.peers).some((p) => (p.wire as { readyState?: number } | undefined)?.readyState === 1),
      )
      if (connected >= peers - 1 && clientsOpen) break
      if (Date.now() > until) throw new Error('gun: peers did not connect to the relay')
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  private gun(i: number): GunInstance {
    const g = this.guns[i]
    if (g === undefined) throw new Error(`gun: no peer ${i}`)
    return g
  }

  async insert(peer: number, rows: readonly StockRow[]): Promise<void> {
    const table = this.gun(peer).get(TABLE)
    for (let i = 0; i < rows.length; i += CHUNK) {
      await Promise.all(
        rows
          .slice(i, i + CHUNK)
          .map((r) => putAcked(table.get(r.id), { id: r.id, store: r.store, sku: r.sku, qty: r.qty, shelf: r.shelf })),
      )
    }
  }

  async update(peer: number, changes: readonly StockChange[]): Promise<void> {
    const table = this.gun(peer).get(TABLE)
    for (let i = 0; i < changes.length; i += CHUNK) {
      await Promise.all(changes.slice(i, i + CHUNK).map((c) => putAcked(table.get(c.id), { ...c.values })))
    }
  }

  private rows(peer: number): StockRow[] {
    const graph = this.gun(peer)._.graph
    const set = graph[TABLE]
    const out: StockRow[] = []
    if (set === undefined) return out
    for (const [key, ref] of Object.entries(set)) {
      if (key === '_') continue
      const soul = refSoul(ref)
      const node = soul === undefined ? undefined : graph[soul]
      if (node === undefined) continue
      if (!ROW_FIELDS.every((f) => node[f] !== undefined && node[f] !== null)) continue
      out.push({
        id: String(node['id']),
        store: String(node['store']),
        sku: String(node['sku']),
        qty: Number(node['qty']),
        shelf: String(node['shelf']),
      })
    }
    return out
  }

  async count(peer: number): Promise<number> {
    return this.rows(peer).length
  }

  async snapshot(peer: number): Promise<StockRow[]> {
    return this.rows(peer)
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const g of this.guns.splice(0)) {
      g.get(TABLE).map().off()
      const peers = g._.opt.peers
      for (const [id, p] of Object.entries(peers)) {
        delete peers[id] // stops GUN's reconnect and heartbeat loops
        try {
          p.wire?.close?.()
        } catch {
          /* already closed */
        }
      }
      const wss = g._.opt.ws?.web
      if (wss !== undefined) {
        for (const c of wss.clients ?? []) c.terminate()
        await new Promise<void>((r) => wss.close(() => r()))
      }
    }
    const server = this.server
    this.server = undefined
    if (server !== undefined) {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    }
  }
}

export function createAdapter(): SystemAdapter {
  return new GunAdapter()
}

export default createAdapter
