/*
 * automerge-repo adapter, set up as the automerge-repo docs recommend for Node: a Repo per peer
 * with NodeFSStorageAdapter (own folder), peer 0 additionally running a `ws` WebSocketServer on
 * 127.0.0.1 wrapped in WebSocketServerAdapter (the "sync server"), every other peer connecting to it
 * with WebSocketClientAdapter. Layout: ONE document for the whole table, `{ rows: { [id]: row } }`.
 * Writes: one handle.change() per chunk of CHUNK rows (a change per row would be the naive use and
 * is far slower).
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Repo, type DocHandle } from '@automerge/automerge-repo'
import { WebSocketClientAdapter, WebSocketServerAdapter } from '@automerge/automerge-repo-network-websocket'
import { NodeFSStorageAdapter } from '@automerge/automerge-repo-storage-nodefs'
import { WebSocketServer } from 'ws'
import type { StockChange, StockRow, SystemAdapter } from './adapter.js'

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

  async start(peers: number, dir: string): Promise<void> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.wss = wss
    await new Promise<void>((ok, fail) => {
      wss.once('listening', ok)
      wss.once('error', fail)
    })
    const port = (wss.address() as { port: number }).port
    for (let i = 0; i < peers; i++) {
      const folder = join(dir, `peer${i}`)
      await mkdir(folder, { recursive: true })
      const network = i === 0 ? new WebSocketServerAdapter(wss as never) : new WebSocketClientAdapter(`ws://127.0.0.1:${port}`)
      this.repos.push(new Repo({ network: [network], storage: new NodeFSStorageAdapter(folder) }))
    }
    const first = this.repos[0]!.create<TableDoc>({ rows: {} })
    this.handles.push(first)
    for (let i = 1; i < peers; i++) {
      this.handles.push(await this.repos[i]!.find<TableDoc>(first.url))
    }
  }

  private handle(i: number): DocHandle<TableDoc> {
    const h = this.handles[i]
    if (h === undefined) throw new Error(`automerge-repo: no peer ${i}`)
    return h
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
    for (const r of this.repos.splice(0).reverse()) await r.shutdown().catch(() => undefined)
    this.handles = []
    const wss = this.wss
    this.wss = null
    if (wss !== null) {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((r) => wss.close(() => r()))
    }
  }
}

export function createAdapter(): SystemAdapter {
  return new AutomergeRepoAdapter()
}
