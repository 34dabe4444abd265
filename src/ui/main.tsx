import { render } from 'preact'
import { BrowserPeer, consoleLogger } from '../browser.js'
import { App } from './app.js'

/*
 * The demo app's start: ask the peer that served the page how to reach it (GET config.json: its
 * peer id and WebSocket port), join the mesh through it as a peer of this tab's own, carrying
 * only the store named in ?store=… when there is one.
 */

interface ServedBy {
  peerId: string
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
  const peer = await BrowserPeer.start({
    name: store === null || store === '' ? 'shoal-ui' : `shoal-ui-${store}`,
    bootstrap,
    carries,
    logger: consoleLogger('warn'),
  })
  ;(window as unknown as { shoalPeer: BrowserPeer }).shoalPeer = peer
  root.textContent = ''
  render(<App peer={peer} store={store === '' ? null : store} />, root)
}

const root = document.getElementById('app')!
start(root).catch((error: unknown) => {
  root.innerHTML = ''
  const box = document.createElement('p')
  box.className = 'fatal'
  box.textContent = `This tab could not join the mesh: ${error instanceof Error ? error.message : String(error)}`
  root.append(box)
  console.error(error)
})
