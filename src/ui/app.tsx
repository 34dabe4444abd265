import { useCallback, useEffect, useMemo, useState } from 'preact/hooks'
import type { BrowserPeer } from '../browser.js'
import { NoteField } from './note-field.js'
import { usePoll, useRows, type Row } from './live-rows.js'

/*
 * The stock board of the retail example, as a peer of the mesh in this tab: stock rows with
 * counters anyone can press, a note per row several people can type in at once, the catalog with
 * prices, who this tab is connected to, and an offline switch. Everything is read from and
 * written to this tab's own store (IndexedDB); the mesh carries it.
 */

export interface AppProps {
  peer: BrowserPeer
  /** The store this tab carries (?store=…), or null for all of them. */
  store: string | null
}

export function App({ peer, store }: AppProps) {
  const stock = useRows(peer.db, 'stock')
  const catalog = useRows(peer.db, 'catalog')
  const [online, setOnline] = useState(peer.online)
  const pending = usePending(peer)
  const rows = useMemo(
    () => [...stock.entries()].filter(([, r]) => store === null || r.store === store).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    [stock, store],
  )
  const hasNote = peer.db.tables().find((t) => t.name === 'stock')?.columns.note === 'text'
  const toggle = (wanted: boolean): void => {
    setOnline(wanted)
    peer.setOnline(wanted).catch((error: unknown) => console.error('could not switch the connection', error))
  }
  return (
    <main>
      <header>
        <h1>
          Stock board <span class="where">{store === null ? 'all stores' : `store ${store}`}</span>
        </h1>
        <SyncIndicator peer={peer} pending={pending} />
        <label class="switch">
          <input type="checkbox" checked={online} onChange={(e) => toggle(e.currentTarget.checked)} data-testid="online" /> online
        </label>
      </header>
      <section>
        <h2>Stock</h2>
        {rows.length === 0 ? (
          <p class="empty">No stock rows yet{peer.db.tables().some((t) => t.name === 'stock') ? '' : ': waiting for the table to arrive from the mesh'}.</p>
        ) : (
          <table class="stock">
            <thead>
              <tr>
                <th>item</th>
                <th>store</th>
                <th class="num">on hand</th>
                <th>note</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(([key, row]) => (
                <StockRow key={key} peer={peer} rowKey={key} row={row} product={catalog.get(String(row.sku))} hasNote={hasNote} />
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="side">
        <Catalog rows={catalog} />
        <Peers peer={peer} />
      </section>
    </main>
  )
}

function StockRow({ peer, rowKey, row, product, hasNote }: { peer: BrowserPeer; rowKey: string; row: Row; product: Row | undefined; hasNote: boolean }) {
  const table = peer.db.table('stock')
  const bump = (by: number): void => {
    void table.increment(rowKey, 'qty', by).catch((error: unknown) => console.error(`could not change ${rowKey}`, error))
  }
  const qty = Number(row.qty ?? 0)
  return (
    <tr data-key={rowKey}>
      <td>
        <strong>{product === undefined ? String(row.sku) : String(product.name)}</strong>
        <div class="sku">{String(row.sku)}</div>
      </td>
      <td>{String(row.store)}</td>
      <td class="num">
        <button type="button" aria-label={`one less ${String(row.sku)}`} onClick={() => bump(-1)}>
          −
        </button>
        <span class={qty <= 0 ? 'qty out' : 'qty'} data-testid="qty">
          {qty}
        </span>
        <button type="button" aria-label={`one more ${String(row.sku)}`} onClick={() => bump(1)}>
          +
        </button>
      </td>
      <td>{hasNote ? <NoteField table={table} rowKey={rowKey} column="note" value={String(row.note ?? '')} label={`note for ${rowKey}`} /> : null}</td>
    </tr>
  )
}

function Catalog({ rows }: { rows: Map<string, Row> }) {
  const sorted = [...rows.values()].sort((a, b) => String(a.sku).localeCompare(String(b.sku)))
  return (
    <div>
      <h2>Catalog</h2>
      {sorted.length === 0 ? (
        <p class="empty">No products yet.</p>
      ) : (
        <table class="catalog">
          <tbody>
            {sorted.map((p) => (
              <tr key={String(p.sku)}>
                <td>{String(p.name)}</td>
                <td class="num">{typeof p.price === 'number' ? p.price.toFixed(2) : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  )
}

function Peers({ peer }: { peer: BrowserPeer }) {
  const read = useCallback(
    () => ({
      // How each peer is reached: another tab directly over WebRTC, a Node peer over WebSockets.
      connected: [
        ...new Map(
          peer.node.libp2p
            .getConnections()
            .filter((c) => c.limits === undefined)
            .map((c) => [c.remotePeer.toString(), { id: c.remotePeer.toString(), link: c.remoteAddr.toString().includes('/webrtc') ? 'WebRTC' : 'WebSockets' }] as const),
        ).values(),
      ],
      rounds: peer.sync.status().peers,
    }),
    [peer],
  )
  const { connected, rounds } = usePoll(read, 500)
  return (
    <div>
      <h2>Peers</h2>
      <p class="me">
        this tab <code title={peer.peerId}>{short(peer.peerId)}</code>
      </p>
      {connected.length === 0 ? (
        <p class="empty">Not connected.</p>
      ) : (
        <ul class="peers">
          {connected.map(({ id, link }) => {
            const last = rounds.find((r) => r.peer === id)?.lastRound
            return (
              <li key={id}>
                <code title={id}>{short(id)}</code> <span class="muted">{link}</span>
                {last === null || last === undefined ? '' : <span class="muted">, synced {ago(last.at)}</span>}
              </li>
            )
          })}
        </ul>
      )}
    </div>
  )
}

function SyncIndicator({ peer, pending }: { peer: BrowserPeer; pending: number }) {
  const read = useCallback(() => {
    const rounds = peer.sync
      .status()
      .peers.map((p) => p.lastRound)
      .filter((r) => r !== null)
    const last = rounds.sort((a, b) => (a.at < b.at ? 1 : -1))[0]
    return { peers: peer.node.connectedPeers().length, last, online: peer.online }
  }, [peer])
  const { peers, last, online } = usePoll(read, 500)
  const state = !online ? 'offline' : peers === 0 ? 'connecting' : pending > 0 ? 'syncing' : 'in sync'
  return (
    <div class={`sync ${state.replace(' ', '-')}`} data-testid="sync">
      <span class="dot" /> <strong>{state}</strong>
      <span class="muted">
        {' '}
        · {peers} peer{peers === 1 ? '' : 's'} · {pending} change{pending === 1 ? '' : 's'} to send · last round {last === undefined ? 'none yet' : `${ago(last.at)}${last.ok ? '' : ' (failed)'}`}
      </span>
    </div>
  )
}

/**
 * Changes made here while no peer was connected, not yet exchanged: counted from this tab's own
 * writes, cleared by the first successful anti-entropy round after they were made.
 */
function usePending(peer: BrowserPeer): number {
  const [pending, setPending] = useState(0)
  useEffect(() => {
    const waiting = new Map<string, number>()
    const unsubscribe = peer.db.subscribe((event) => {
      if (event.origin !== 'local' || peer.node.connectedPeers().length > 0) return
      waiting.set(`${event.table}/${event.key}`, Date.now())
      setPending(waiting.size)
    })
    const timer = setInterval(() => {
      if (waiting.size === 0 || peer.node.connectedPeers().length === 0) return
      const done = peer.sync
        .status()
        .peers.map((p) => p.lastRound)
        .filter((r) => r !== null && r.ok)
        .map((r) => Date.parse(r!.at))
      const latest = Math.max(0, ...done)
      for (const [key, at] of waiting) if (at < latest) waiting.delete(key)
      setPending(waiting.size)
    }, 500)
    return () => {
      unsubscribe()
      clearInterval(timer)
    }
  }, [peer])
  return pending
}

function short(id: string): string {
  return `${id.slice(0, 8)}…${id.slice(-6)}`
}

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return s < 60 ? `${s} s ago` : `${Math.round(s / 60)} min ago`
}
