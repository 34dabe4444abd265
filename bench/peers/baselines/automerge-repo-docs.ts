/*
 * automerge-repo, ONE DOCUMENT PER ROW: same setup as automerge-repo.ts (Repo per peer, NodeFS
 * storage, WebSocket sync server in peer 0, clients elsewhere), but every row is its own Automerge
 * document ({store, sku, qty, shelf}) and an index document {urls: {[id]: AutomergeUrl}} lists them
 * (how an automerge-repo app finds documents it did not create). Every peer watches the index and
 * repo.find()s each row document it learns of; count()/snapshot() read the row documents that are
 * loaded on that peer.
 * Restart (stopPeer/startPeer, peers >= 1): stopPeer shuts that Repo down (closes its WebSocket, flushes
 * NodeFS storage) and drops it with all its handles; startPeer builds a new Repo on the same folder with
 * a new WebSocketClientAdapter to peer 0, waits for the hub connection, find()s the same index URL and
 * then every row document it lists (from disk, then synced with the server).
 */
import { Repo, type AutomergeUrl, type DocHandle } from '@automerge/automerge-repo'
import { WebSocketServer } from 'ws'
import type { StockChange, StockRow, SystemAdapter } from '../adapter.js'
import { reconnectClient, startHub, stopHub } from './automerge-hub.js'

const CHUNK = 1000

interface RowDoc {
  store: string
  sku: string
  qty: number
  shelf: string
}

interface IndexDoc {
  urls: Record<string, AutomergeUrl>
}

interface PeerState {
  repo: Repo
  index: DocHandle<IndexDoc>
  rows: Map<string, DocHandle<RowDoc>>
  finding: Set<string>
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

export class AutomergeRepoDocsAdapter implements SystemAdapter {
  readonly name = 'automerge-repo (doc/row)'
  readonly topology = 'WebSocket sync server (ws) in peer 0, every other peer a WebSocketClientAdapter to ws://127.0.0.1'
  readonly notes = `one Automerge document per row + an index document {urls}; peers find() every row document listed in the index; one index change() per ${CHUNK} rows; repo.flush() before a write call resolves`
  private peers: PeerState[] = []
  private wss: WebSocketServer | null = null
  private dir = ''
  private port = 0
  /** Peers taken offline by stopPeer() (their Repo is shut down and dropped). */
  private offline = new Set<number>()

  async start(peers: number, dir: string): Promise<void> {
    const { wss, port, repos } = await startHub(peers, dir)
    this.wss = wss
    this.dir = dir
    this.port = port
    const index = repos[0]!.create<IndexDoc>({ urls: {} })
    for (let i = 0; i < peers; i++) {
      const handle = i === 0 ? index : await repos[i]!.find<IndexDoc>(index.url)
      const state: PeerState = { repo: repos[i]!, index: handle, rows: new Map(), finding: new Set() }
      handle.on('change', () => this.discover(state))
      this.peers.push(state)
    }
  }

  /** Finds every row document the index lists that this peer has not loaded yet. */
  private discover(p: PeerState): void {
    const urls = p.index.doc().urls
    for (const [id, url] of Object.entries(urls)) {
      if (p.rows.has(id) || p.finding.has(id)) continue
      p.finding.add(id)
      p.repo.find<RowDoc>(url).then(
        (h) => {
          p.finding.delete(id)
          p.rows.set(id, h)
        },
        () => p.finding.delete(id),
      )
    }
  }

  private peer(i: number): PeerState {
    if (this.offline.has(i)) throw new Error(`automerge-repo-docs: peer ${i} is stopped (stopPeer)`)
    const p = this.peers[i]
    if (p === undefined) throw new Error(`automerge-repo-docs: no peer ${i}`)
    return p
  }

  async stopPeer(peer: number): Promise<void> {
    if (peer === 0) throw new Error('automerge-repo-docs: stopPeer(0) not supported (peer 0 is the sync server)')
    if (this.offline.has(peer)) throw new Error(`automerge-repo-docs: peer ${peer} is already stopped`)
    const p = this.peer(peer)
    this.offline.add(peer)
    p.index.off('change')
    // shutdown(): disconnects the WebSocketClientAdapter (closes the socket, clears its retry timer)
    // and flushes pending storage writes. NodeFSStorageAdapter keeps no open files to close.
    await p.repo.shutdown()
    p.rows.clear()
    p.finding.clear()
  }

  async startPeer(peer: number): Promise<void> {
    if (!this.offline.has(peer)) throw new Error(`automerge-repo-docs: peer ${peer} is not stopped`)
    const indexUrl = this.peers[0]?.index.url
    if (indexUrl === undefined) throw new Error('automerge-repo-docs: not started')
    const repo = await reconnectClient(this.dir, peer, this.port, 'automerge-repo-docs')
    let state: PeerState
    try {
      const index = await repo.find<IndexDoc>(indexUrl)
      state = { repo, index, rows: new Map(), finding: new Set() }
    } catch (e) {
      await repo.shutdown().catch(() => undefined)
      throw e
    }
    state.index.on('change', () => this.discover(state))
    this.peers[peer] = state
    this.offline.delete(peer)
    this.discover(state) // the index as loaded from disk: find() every row document it lists
  }

  async insert(peer: number, rows: readonly StockRow[]): Promise<void> {
    const p = this.peer(peer)
    for (let i = 0; i < rows.length; i += CHUNK) {
      const part = rows.slice(i, i + CHUNK)
      const made: Array<[string, AutomergeUrl]> = []
      for (const r of part) {
        const h = p.repo.create<RowDoc>({ store: r.store, sku: r.sku, qty: r.qty, shelf: r.shelf })
        p.rows.set(r.id, h)
        made.push([r.id, h.url])
      }
      p.index.change((d) => {
        for (const [id, url] of made) d.urls[id] = url
      })
      await tick()
    }
    await p.repo.flush()
  }

  async update(peer: number, changes: readonly StockChange[]): Promise<void> {
    const p = this.peer(peer)
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i]!
      const h = p.rows.get(c.id)
      if (h === undefined) continue
      h.change((d) => {
        for (const [k, v] of Object.entries(c.values)) (d as unknown as Record<string, unknown>)[k] = v
      })
      if (i % CHUNK === CHUNK - 1) await tick()
    }
    await p.repo.flush()
  }

  async count(peer: number): Promise<number> {
    return this.peer(peer).rows.size
  }

  async snapshot(peer: number): Promise<StockRow[]> {
    const out: StockRow[] = []
    for (const [id, h] of this.peer(peer).rows) {
      const d = h.doc()
      out.push({ id, store: d.store, sku: d.sku, qty: d.qty, shelf: d.shelf })
    }
    return out
  }

  async stop(): Promise<void> {
    const live = this.peers.splice(0).filter((_p, i) => !this.offline.has(i)) // stopped ones are already shut down
    this.offline.clear()
    const wss = this.wss
    this.wss = null
    await stopHub(live.map((p) => p.repo), wss)
  }
}

export function createAdapter(): SystemAdapter {
  return new AutomergeRepoDocsAdapter()
}
