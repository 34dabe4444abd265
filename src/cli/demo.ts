import { ConfigError, parseConfig, type PeerConfig } from '../config.js'
import type { Peer } from '../peer/peer.js'
import { applyFlags, type Options } from './options.js'
import { runPeer } from './start.js'

/*
 * `shoal demo` (npm run demo): a peer of the retail example in an open mesh, serving the stock
 * board, with a few products and two stores' stock to press and type into. Open the printed URL
 * in two browsers (or a normal and a private window): each tab is a peer of its own, and the tabs
 * connect to each other over WebRTC too.
 */

const TABLES = [
  { name: 'catalog', primaryKey: 'sku', engine: 'yjs', columns: { sku: 'string', name: 'string', price: 'number', description: 'text' } },
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'yjs', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string', note: 'text' } },
]

const PRODUCTS = [
  { sku: 'apple', name: 'Apples, Braeburn (1 kg)', price: 3.2 },
  { sku: 'bread', name: 'Sourdough loaf', price: 4.5 },
  { sku: 'coffee', name: 'Coffee beans (250 g)', price: 7.9 },
  { sku: 'milk', name: 'Whole milk (1 l)', price: 1.35 },
  { sku: 'pear', name: 'Pears, Conference (1 kg)', price: 2.9 },
]

const STORES = ['s1', 's2']

export function demoConfig(options: Options): PeerConfig {
  const config = applyFlags(
    // A relay too: the tabs reserve a slot on it, find each other and connect tab to tab over WebRTC.
    parseConfig({ name: 'demo', data: 'data/demo', open: true, mdns: false, ui: true, relay: true, http: '127.0.0.1:7070', listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'], tables: TABLES }, 'the demo'),
    { ...options, open: false },
  )
  if (config.http === null) throw new ConfigError('the demo serves its web app over the HTTP API: leave --http on')
  return config
}

/** Products and stock for two stores, written once into an empty demo store. */
export async function seedDemo(peer: Peer): Promise<string[]> {
  const stock = peer.db.table('stock')
  if ((await stock.scan({ limit: 1 })).rows.length > 0) return []
  const catalog = peer.db.table('catalog')
  for (const p of PRODUCTS) await catalog.put(p.sku, { name: p.name, price: p.price })
  let shelf = 1
  for (const store of STORES) {
    for (const p of PRODUCTS) await stock.put(`${store}-${p.sku}`, { store, sku: p.sku, qty: 10 + ((shelf * 7) % 13), shelf: `A${shelf++}`, note: '' })
  }
  return [`demo: wrote ${PRODUCTS.length} products and their stock in stores ${STORES.join(' and ')}`]
}

export async function demo(options: Options): Promise<void> {
  const config = demoConfig(options)
  await runPeer(config, async (peer) => {
    const lines = await seedDemo(peer)
    const url = peer.http === null ? null : `${peer.http.url}/ui/`
    if (url !== null) lines.push(`\nopen ${url}?store=s1 and ${url}?store=s2 (or ${url} for both) in two browsers: each tab is a peer, press +/− and type notes`)
    return lines
  })
}
