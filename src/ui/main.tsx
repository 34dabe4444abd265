import { render } from 'preact'
import { BrowserPeer, consoleLogger, ShoalError } from '../browser.js'
import { App } from './app.js'

/*
 * The demo app's start: ask the peer that served the page how to reach it (GET config.json: its
 * peer id and WebSocket port), join the mesh through it as a peer of this tab's own, carrying
 * only the store named in ?store=… when there is one.
 */

interface ServedBy {
  peerId: string
  /** The private mesh of the serving peer (this tab must be admitted), or null. */
  mesh: string | null
  /** WebSocket listeners of the serving peer (none: it cannot take browser peers). */
  webSockets: Array<{ port: number; secure: boolean }>
  /** Tables that hold a store's rows (partitioned by store): what ?store= narrows. */
  storeTables: string[]
}

async function start(root: HTMLElement): Promise<void> {
  const response = await fetch('config.json', { cache: 'no-store' })
  if (!response.ok) throw new Error(`the peer answered ${response.status} for config.json`)
  const served = (await response.json()) as ServedBy
  if (served.webSockets.length === 0) {
    throw new Error("the peer that served this page does not listen on WebSockets: add a '/ip4/0.0.0.0/tcp/<port>/ws' address to its config's \"listen\" and restart it")
  }
  const host = location.hostname.replace(/^\[|\]$/g, '')
  const proto = /^[\d.]+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns'
  const bootstrap = served.webSockets.map((w) => `/${proto}/${host}/tcp/${w.port}/${w.secure ? 'tls/ws' : 'ws'}/p2p/${served.peerId}`)
  const store = new URLSearchParams(location.search).get('store')
  const carries = store === null || store === '' ? {} : Object.fromEntries(served.storeTables.map((t) => [t, [store]]))
  const name = store === null || store === '' ? 'shoal-ui' : `shoal-ui-${store}`
  let mesh: string | undefined
  if (served.mesh !== null) {
    const joined = joinCode(name)
    if (joined === null) {
      renderJoin(root, served.mesh, await BrowserPeer.peerId(name), store, null)
      return
    }
    mesh = joined
  }
  let peer: BrowserPeer
  try {
    peer = await BrowserPeer.start({ name, bootstrap, carries, logger: consoleLogger('warn'), ...(mesh === undefined ? {} : { mesh }) })
  } catch (error) {
    // A code for another key, one that lapsed or a revoked admission: ask for a new one.
    if (served.mesh !== null && error instanceof ShoalError && error.code !== 'STORE_OPEN_FAILED') {
      localStorage.removeItem(JOIN_KEY + name)
      renderJoin(root, served.mesh, await BrowserPeer.peerId(name), store, error.message)
      return
    }
    throw error
  }
  ;(window as unknown as { shoalPeer: BrowserPeer }).shoalPeer = peer
  root.textContent = ''
  render(<App peer={peer} store={store === '' ? null : store} />, root)
}

/** Where a tab keeps the join code of its admission (per store name: each is a peer of its own). */
const JOIN_KEY = 'shoal-join:'

/** The join code from an admission link just opened (kept, and taken out of the address bar), or the one kept earlier. */
function joinCode(name: string): string | null {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('join')
  if (fromLink !== null && fromLink !== '') {
    localStorage.setItem(JOIN_KEY + name, fromLink)
    history.replaceState(null, '', location.pathname + location.search)
  }
  return localStorage.getItem(JOIN_KEY + name)
}

/** How to admit this tab: its peer id and the command for the mesh authority. */
function renderJoin(root: HTMLElement, mesh: string, peerId: string, store: string | null, problem: string | null): void {
  const page = `${location.origin}${location.pathname}${location.search}`
  root.textContent = ''
  const command = `shoal mesh admit --authority <authority folder> --peer ${peerId} --group <group>${store === null || store === '' ? '' : ` --partitions ${store}`} --link '${page}'`
  render(
    <main class="join">
      <h1>This board is part of a private mesh</h1>
      {problem === null ? null : <p class="fatal">{problem}</p>}
      <p>
        Mesh <code>{mesh}</code> lets in only admitted peers. This tab is peer <code data-testid="peer-id">{peerId}</code> (its key stays in this browser).
      </p>
      <p>To admit it, run on the mesh authority's machine:</p>
      <pre data-testid="admit-command">{command}</pre>
      <p>and open the link it prints in this tab. The link holds the admission and the mesh's rules, not its secret.</p>
    </main>,
    root,
  )
}

// An admission link opened in this tab while it shows the board (or the join screen) changes only
// the fragment, which does not load the page again: start over with it.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('join')) location.reload()
})

const root = document.getElementById('app')!
start(root).catch((error: unknown) => {
  root.innerHTML = ''
  const box = document.createElement('p')
  box.className = 'fatal'
  box.textContent = `This tab could not join the mesh: ${error instanceof Error ? error.message : String(error)}`
  root.append(box)
  console.error(error)
})
