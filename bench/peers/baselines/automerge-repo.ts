/*
 * automerge-repo adapter, set up as the automerge-repo docs recommend for Node: a Repo per peer
 * with NodeFSStorageAdapter (own folder), peer 0 additionally running a `ws` WebSocketServer on
 * 127.0.0.1 wrapped in WebSocketServerAdapter (the "sync server"), every other peer connecting to it
 * with WebSocketClientAdapter. Layout: ONE document for the whole table, `{ rows: { [id]: row } }`.
 * Writes: one handle.change() per chunk of CHUNK rows (a change per row would be the naive use and
 * is far slower).
 * Restart (stopPeer/startPeer, peers >= 1): stopPeer shuts that Repo down (closes its WebSocket, flushes
 * NodeFS storage) and drops it; startPeer builds a new Repo on the same folder with a new
 * WebSocketClientAdapter to peer 0, waits for the hub connection, then find()s the same document URL.
 */
import { Repo, type AutomergeUrl, type DocHandle } from '@automerge/automerge-repo'
import { WebSocketServer } from 'ws'
import type { StockChange, StockRow, SystemAdapter } from '../adapter.js'
import { reconnectClient, startHub, stopHub } from './automerge-hub.js'

const CHUNK = 1000

interface TableDoc {
  rows: Record<string, { store: string; sku: string; qty: number; shelf: string }>
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

export class AutomergeRepoAdapter implements SystemAdapter {
  readonly name = 'automerge-repo'
  readonly topology = 'WebSocket sync server (ws) in peer 0, every other peer a WebSocketClientAdapter to ws://127.0.0.1'
  readonly notes = `@automerge/automerge-repo + network-websocket + storage-nodefs; one document per table ({rows: {id: row}}); one change() per ${CHUNK} rows, repo.flush() (storage write) before a write call resolves`
  private repos: Repo[] = []
  private handles: Array<DocHandle<TableDoc>> = []
  private wss: WebSocketServer | null = null
  private dir = ''
  private port = 0
  private url: AutomergeUrl | null = null
  /** Peers taken offline by stopPeer() (their Repo is shut down and dropped). */
  private offline = new Set<number>()

  async start(peers: number, dir: string): Promise<void> {
    const hub = await startHub(peers, dir)
    this.wss = hub.wss
    this.dir = dir
    this.port = hub.port
    this.repos = hub.repos
    const first = this.repos[0]!.create<TableDoc>({ rows: {} })
    this.url = first.url
    this.handles.push(first)
    for (let i = 1; i < peers; i++) {
      this.handles.push(await this.repos[i]!.find<TableDoc>(first.url))
    }
  }

  private handle(i: number): DocHandle<TableDoc> {
    if (this.offline.has(i)) throw new Error(`automerge-repo: peer ${i} is stopped (stopPeer)`)
    const h = this.handles[i]
    if (h === undefined) throw new Error(`automerge-repo: no peer ${i}`)
    return h
  }

  async stopPeer(peer: number): Promise<void> {
    if (peer === 0) throw new Error('automerge-repo: stopPeer(0) not supported (peer 0 is the sync server)')
    if (this.offline.has(peer)) throw new Error(`automerge-repo: peer ${peer} is already stopped`)
    const repo = this.repos[peer]
    if (repo === undefined) throw new Error(`automerge-repo: no peer ${peer}`)
    this.offline.add(peer)
    // shutdown(): disconnects the WebSocketClientAdapter (closes the socket, clears its retry timer)
    // and flushes pending storage writes. NodeFSStorageAdapter keeps no open files to close.
    await repo.shutdown()
  }

  async startPeer(peer: number): Promise<void> {
    if (!this.offline.has(peer)) throw new Error(`automerge-repo: peer ${peer} is not stopped`)
    if (this.url === null) throw new Error('automerge-repo: not started')
    const repo = await reconnectClient(this.dir, peer, this.port, 'automerge-repo')
    try {
      // Loads the document from this peer's folder; the synchronizer then syncs it with the server.
      this.handles[peer] = await repo.find<TableDoc>(this.url)
    } catch (e) {
      await repo.shutdown().catch(() => undefined)
      throw e
    }
    this.repos[peer] = repo
    this.offline.delete(peer)
  }

  async insert(peer: number, rows: readonly StockRow[]): Promise<void> {
    const h = this.handle(peer)
    for (let i = 0; i < rows.length; i += CHUNK) {
      const part = rows.slice(i, i + CHUNK)
      h.change((d) => {
        for (const r of part) d.rows[r.id] = { store: r.store, sku: r.sku, qty: r.qty, shelf: r.shelf }
      })
      await tick()
    }
    await this.repos[peer]!.flush()
  }

  async update(peer: number, changes: readonly StockChange[]): Promise<void> {
    const h = this.handle(peer)
    for (let i = 0; i < changes.length; i += CHUNK) {
      const part = changes.slice(i, i + CHUNK)
      h.change((d) => {
        for (const c of part) {
          const row = d.rows[c.id]
          if (row === undefined) continue
          for (const [k, v] of Object.entries(c.values)) (row as Record<string, unknown>)[k] = v
        }
      })
      await tick()
    }
    await this.repos[peer]!.flush()
  }

  async count(peer: number): Promise<number> {
    return Object.keys(this.handle(peer).doc().rows).length
  }

  async snapshot(peer: number): Promise<StockRow[]> {
    const rows = this.handle(peer).doc().rows
    return Object.entries(rows).map(([id, r]) => ({ id, store: r.store, sku: r.sku, qty: r.qty, shelf: r.shelf }))
  }

  async stop(): Promise<void> {
    const repos = this.repos.splice(0).filter((_r, i) => !this.offline.has(i)) // stopped ones are already shut down
    this.offline.clear()
    this.handles = []
    const wss = this.wss
    this.wss = null
    await stopHub(repos, wss)
  }
}

export function createAdapter(): SystemAdapter {
  return new AutomergeRepoAdapter()
}
