/*
 * Yjs adapter: one Y.Doc per table per peer (`rows`: Y.Map id → Y.Map of columns, so a one-column
 * update is a one-column CRDT op), synced with the y-websocket wire protocol (y-protocols/sync
 * messages: sync step 1 / step 2 / update, framed as messageSync = 0) over `ws` on 127.0.0.1.
 * Topology as y-websocket: peer 0 is the server (holding its own replica, relaying every update to
 * the other connections, as @y/websocket-server does), every other peer a client. The server is a
 * minimal one written here with y-protocols/sync + ws (what y-websocket's server utils do, minus
 * awareness/auth) to avoid the y-websocket server package's extra deps and HTTP layer.
 * Persistence: y-leveldb (LeveldbPersistence per peer folder), every doc update stored with
 * storeUpdate(); local writes resolve once their update is stored.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { LeveldbPersistence } from 'y-leveldb'
import * as syncProtocol from 'y-protocols/sync'
import { WebSocket, WebSocketServer } from 'ws'
import * as Y from 'yjs'
import type { StockChange, StockRow, SystemAdapter } from '../adapter.js'

const DOC = 'stock'
const MESSAGE_SYNC = 0
const CHUNK = 1000

interface Replica {
  doc: Y.Doc
  rows: Y.Map<Y.Map<unknown>>
  db: LeveldbPersistence
  conns: Set<WebSocket>
  pending: Set<Promise<unknown>>
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

function syncMessage(write: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MESSAGE_SYNC)
  write(e)
  return encoding.toUint8Array(e)
}

/** Wires one WebSocket to a replica: step 1 on open, answers/apply on message (y-websocket protocol). */
function attach(r: Replica, ws: WebSocket): void {
  r.conns.add(ws)
  ws.binaryType = 'nodebuffer'
  ws.on('message', (data: Buffer) => {
    const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    const encoder = encoding.createEncoder()
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) return
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.readSyncMessage(decoder, encoder, r.doc, ws)
    if (encoding.length(encoder) > 1) ws.send(encoding.toUint8Array(encoder))
  })
  ws.on('close', () => r.conns.delete(ws))
  ws.send(syncMessage((e) => syncProtocol.writeSyncStep1(e, r.doc)))
}

async function flush(r: Replica): Promise<void> {
  while (r.pending.size > 0) await Promise.all([...r.pending])
}

/** Loads a peer's document from its y-leveldb folder; every later update is stored and relayed to its connections. */
async function open(folder: string): Promise<Replica> {
  const db = new LeveldbPersistence(folder)
  const doc = await db.getYDoc(DOC)
  const r: Replica = { doc, rows: doc.getMap('rows'), db, conns: new Set(), pending: new Set() }
  doc.on('update', (update: Uint8Array, origin: unknown) => {
    const p = db.storeUpdate(DOC, update)
    r.pending.add(p)
    void p.finally(() => r.pending.delete(p))
    const message = syncMessage((e) => syncProtocol.writeUpdate(e, update))
    for (const c of r.conns) if (c !== origin && c.readyState === WebSocket.OPEN) c.send(message)
  })
  return r
}

async function close(r: Replica): Promise<void> {
  await flush(r)
  r.doc.destroy()
  await r.db.destroy()
}

export class YjsAdapter implements SystemAdapter {
  readonly name = 'yjs'
  readonly topology = 'y-websocket protocol (y-protocols/sync over ws): peer 0 is the server replica + relay, others clients to ws://127.0.0.1'
  readonly notes = `yjs + y-protocols/sync + ws + y-leveldb; one Y.Doc per table, Y.Map id → Y.Map(columns); one transaction per ${CHUNK} rows`
  private replicas: Array<Replica | null> = []
  private folders: string[] = []
  private wss: WebSocketServer | null = null
  private port = 0

  async start(peers: number, dir: string): Promise<void> {
    for (let i = 0; i < peers; i++) {
      const folder = join(dir, `peer${i}`)
      await mkdir(folder, { recursive: true })
      this.folders.push(folder)
      this.replicas.push(await open(folder))
    }
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.wss = wss
    await new Promise<void>((ok, fail) => {
      wss.once('listening', ok)
      wss.once('error', fail)
    })
    wss.on('connection', (ws) => attach(this.replica(0), ws))
    this.port = (wss.address() as { port: number }).port
    for (let i = 1; i < peers; i++) await this.connect(i)
    while (this.replicas.some((r, i) => r !== null && (i === 0 ? r.conns.size < peers - 1 : r.conns.size < 1))) await tick()
  }

  /** A client connects as y-websocket's WebsocketProvider does: open, then sync step 1 both ways. */
  private async connect(i: number): Promise<void> {
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}`)
    await new Promise<void>((ok, fail) => {
      ws.once('open', ok)
      ws.once('error', fail)
    })
    attach(this.replica(i), ws)
  }

  async stopPeer(i: number): Promise<void> {
    if (i === 0) throw new Error('yjs: peer 0 is the server; take a client offline')
    const r = this.replica(i)
    this.replicas[i] = null
    for (const c of r.conns) c.close()
    await close(r)
  }

  /** A new Y.Doc loaded from the peer's y-leveldb folder, reconnected to the server. */
  async startPeer(i: number): Promise<void> {
    if (this.replicas[i] !== null) throw new Error(`yjs: peer ${i} is running`)
    this.replicas[i] = await open(this.folders[i]!)
    await this.connect(i)
  }

  private replica(i: number): Replica {
    const r = this.replicas[i]
    if (r === undefined) throw new Error(`yjs: no peer ${i}`)
    if (r === null) throw new Error(`yjs: peer ${i} is offline (stopPeer)`)
    return r
  }

  private flush(r: Replica): Promise<void> {
    return flush(r)
  }

  async insert(peer: number, rows: readonly StockRow[]): Promise<void> {
    const r = this.replica(peer)
    for (let i = 0; i < rows.length; i += CHUNK) {
      const part = rows.slice(i, i + CHUNK)
      r.doc.transact(() => {
        for (const row of part) {
          const m = new Y.Map<unknown>()
          m.set('store', row.store)
          m.set('sku', row.sku)
          m.set('qty', row.qty)
          m.set('shelf', row.shelf)
          r.rows.set(row.id, m)
        }
      })
      await tick()
    }
    await this.flush(r)
  }

  async update(peer: number, changes: readonly StockChange[]): Promise<void> {
    const r = this.replica(peer)
    for (let i = 0; i < changes.length; i += CHUNK) {
      const part = changes.slice(i, i + CHUNK)
      r.doc.transact(() => {
        for (const c of part) {
          const m = r.rows.get(c.id)
          if (m === undefined) continue
          for (const [k, v] of Object.entries(c.values)) m.set(k, v)
        }
      })
      await tick()
    }
    await this.flush(r)
  }

  async count(peer: number): Promise<number> {
    return this.replica(peer).rows.size
  }

  async snapshot(peer: number): Promise<StockRow[]> {
    const out: StockRow[] = []
    for (const [id, m] of this.replica(peer).rows) {
      out.push({ id, store: m.get('store') as string, sku: m.get('sku') as string, qty: m.get('qty') as number, shelf: m.get('shelf') as string })
    }
    return out
  }

  async stop(): Promise<void> {
    const wss = this.wss
    this.wss = null
    for (const r of this.replicas) for (const c of r?.conns ?? []) c.terminate()
    if (wss !== null) await new Promise<void>((ok) => wss.close(() => ok()))
    for (const r of this.replicas.splice(0)) if (r !== null) await close(r)
  }
}

export function createAdapter(): SystemAdapter {
  return new YjsAdapter()
}
