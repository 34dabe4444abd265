import '../src/polyfill.js'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { build } from 'esbuild'
import { chromium, type Browser, type Page } from 'playwright-core'
import { WebSocketServer } from 'ws'
import { buildBrowser, pageBytes } from '../scripts/browser-build.js'
import { parseConfig } from '../src/config.js'
import { Peer } from '../src/peer/peer.js'
import { parseArgs } from './lib/args.js'
import { eventually } from './lib/poll.js'
import { reportText } from './lib/report.js'
import { machine, srcHash, writeResults } from './lib/results.js'
import { quantile } from './lib/stats.js'
import { fmt, markdownTable } from './lib/table.js'
import { removeDir, tempDir } from './lib/temp.js'
import { baselinesDir, prepareSystems } from './peers/systems.js'

/*
 * A browser peer in headless Chromium (Debian's, driven by playwright-core), side by side with
 * the Yjs client people would use instead (y-websocket + y-indexeddb, one Y.Doc holding the table
 * as a Y.Map of row Y.Maps), on the same rows, served from 127.0.0.1:
 *
 *   load N rows from a Node peer: time to interactive (navigation start → the client can read and
 *     write: BrowserPeer started / IndexedDB opened and the socket asked for), time until all N
 *     rows are in the tab, rows/s over that;
 *   a counter click in tab A → visible in tab B, through the Node side (p50 / p99 over --clicks),
 *     timed in the pages (performance.timeOrigin + now()); and for Shoal also tab to tab over
 *     WebRTC: the Node peer runs a relay, the tabs connect to each other, then the Node peer stops.
 *     (Host candidates: on this machine its own address, which Chromium would otherwise hide
 *     behind an mDNS name.)
 *
 * Shoal's rows are durable in IndexedDB when counted (each page of rows is one IndexedDB
 * transaction); y-indexeddb stores updates as they arrive, not awaited here. The Yjs server keeps
 * its document in memory (y-websocket's own server), Shoal's Node peer in LevelDB.
 *
 *   npm run bench:browser                          10k and 100k rows, 100 clicks
 *   npm run bench:browser -- --rows 10000 --clicks 50     a partial run
 */

const args = parseArgs()
const ROWS = (args.option('--rows') ?? '10000,100000').split(',').map(Number)
const CLICKS = Number(args.option('--clicks') ?? 100)
const SAVE = !args.flag('--no-save')
const PARTIAL = args.option('--rows') !== undefined || args.option('--clicks') !== undefined
const CHROMIUM = '/usr/bin/chromium'
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-features=WebRtcHideLocalIpsWithMdns']
const t0 = performance.now()
const progress = (m: string): void => void process.stderr.write(`[browser ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`)

const TABLE = { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' } }
const row = (i: number): { store: string; sku: string; qty: number; shelf: string } => ({ store: String(i % 4), sku: `S${i}`, qty: i % 9, shelf: `shelf ${i % 50}` })

interface LoadResult {
  system: string
  rows: number
  interactiveMs: number
  loadedMs: number
  rowsPerSecond: number
}

interface ClickResult {
  system: string
  rows: number
  clicks: number
  p50: number
  p99: number
}

type Win = Window & Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const PAGE = (script: string): string => `<!doctype html><meta charset="utf-8"><title>bench</title><script type="module">${script}</script>`

function serve(dir: string): Promise<Server> {
  const types: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html' }
  const pages: Record<string, string> = {
    '/shoal.html': PAGE(`window.shoal = await import('/shoal.js'); window.ready = true`),
    '/yjs.html': PAGE(`await import('/yjs-client.js'); window.ready = true`),
  }
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname
    if (pages[path] !== undefined) return void res.writeHead(200, { 'content-type': 'text/html' }).end(pages[path])
    const file = normalize(join(dir, path))
    if (!file.startsWith(dir + '/')) return void res.writeHead(404).end()
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end(),
    )
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

async function open(browser: Browser, base: string, page: 'shoal' | 'yjs'): Promise<Page> {
  const p = await (await browser.newContext()).newPage()
  await p.goto(`${base}/${page}.html`)
  await p.waitForFunction(() => (window as Win).ready === true, undefined, { timeout: 60_000 })
  return p
}

/** Shoal: a Node peer holding the rows, listening on WebSockets (a relay where tabs meet, with `relay`). */
async function shoalSide(rows: number, relay = false): Promise<{ ws: string; peer: Peer; close: () => Promise<void> }> {
  const dir = await tempDir('browser', 'node')
  const config = { ...parseConfig({ tables: [TABLE], open: true, relay }, 'bench'), data: dir, listen: ['/ip4/127.0.0.1/tcp/0/ws'], mdns: false, http: null }
  const peer = await Peer.start(config, {})
  for (let i = 0; i < rows; i += 2000) {
    await peer.db.applyBatch(Array.from({ length: Math.min(2000, rows - i) }, (_, j) => ({ table: 'stock', op: 'put' as const, key: `r${i + j}`, values: row(i + j) })))
  }
  const ws = peer.node.multiaddrs().map(String).find((a) => a.includes('/ws/'))!
  return { ws, peer, close: async () => { await peer.stop(); await removeDir(dir) } }
}

/** Yjs: y-websocket's own server holding the rows as one Y.Doc (the baselines package's packages). */
async function yjsSide(rows: number): Promise<{ url: string; close: () => Promise<void> }> {
  const require = createRequire(join(baselinesDir(), 'package.json'))
  const utils = require('y-websocket/bin/utils') as { setupWSConnection: (ws: unknown, req: unknown, o: { docName: string }) => void; getYDoc: (name: string) => any } // eslint-disable-line @typescript-eslint/no-explicit-any
  const Y = require('yjs') as typeof import('yjs')
  const room = `stock-${rows}-${Date.now()}`
  const doc = utils.getYDoc(room)
  const table = doc.getMap('stock')
  for (let i = 0; i < rows; i += 2000) {
    doc.transact(() => {
      for (let j = i; j < Math.min(rows, i + 2000); j++) {
        const r = new Y.Map<unknown>()
        for (const [k, v] of Object.entries({ id: `r${j}`, ...row(j) })) r.set(k, v)
        table.set(`r${j}`, r)
      }
    })
  }
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  wss.on('connection', (conn, req) => utils.setupWSConnection(conn, req, { docName: room }))
  await new Promise<void>((r) => wss.once('listening', () => r()))
  const port = (wss.address() as { port: number }).port
  return { url: `ws://127.0.0.1:${port}|${room}`, close: () => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()) }) }
}

/** Starts the client in a fresh tab; returns ms since navigation start at interactive and at loaded. */
async function load(page: Page, system: string, target: string, rows: number): Promise<{ interactiveMs: number; loadedMs: number }> {
  return page.evaluate(
    async ({ system, target, rows }) => {
      const w = window as Win
      if (system === 'shoal') {
        w.peer = await w.shoal.BrowserPeer.start({ name: 'bench', bootstrap: [target], sync: { connectDelayMs: 0 } })
        const interactiveMs = performance.now()
        for (;;) {
          const status = await w.peer.db.status()
          const have = (status.tables as Array<{ name: string; rows: number }>).filter((t) => t.name === 'stock').reduce((n, t) => n + t.rows, 0)
          if (have >= rows) break
          await new Promise((r) => setTimeout(r, 20))
        }
        return { interactiveMs, loadedMs: performance.now() }
      }
      const { Y, IndexeddbPersistence, WebsocketProvider } = w.yjsClient
      const [url, room] = target.split('|')
      const doc = new Y.Doc()
      const local = new IndexeddbPersistence(`bench-${room}`, doc)
      await local.whenSynced
      const provider = new WebsocketProvider(url, room, doc)
      const interactiveMs = performance.now()
      w.doc = doc
      w.provider = provider
      const table = doc.getMap('stock')
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (table.size >= rows) resolve()
          else setTimeout(check, 20)
        }
        check()
      })
      return { interactiveMs, loadedMs: performance.now() }
    },
    { system, target, rows },
  )
}

/** Clicks in A, each waited for in B; latencies from the pages' clocks. */
async function clicks(a: Page, b: Page, system: string, n: number): Promise<number[]> {
  await b.evaluate(({ system }) => {
    const w = window as Win
    w.seen = []
    const now = (): number => performance.timeOrigin + performance.now()
    if (system === 'shoal') w.peer.db.subscribe((e: { key: string; origin: string }) => void (e.key === 'r1' && e.origin !== 'local' && w.seen.push(now())))
    else (w.doc.getMap('stock').get('r1') as { observe: (f: () => void) => void }).observe(() => w.seen.push(now()))
  }, { system })
  const sent: number[] = []
  for (let i = 0; i < n; i++) {
    sent.push(
      await a.evaluate(async ({ system }) => {
        const w = window as Win
        const at = performance.timeOrigin + performance.now()
        if (system === 'shoal') await w.peer.db.table('stock').increment('r1', 'qty', 1)
        else {
          const r = w.doc.getMap('stock').get('r1')
          r.set('qty', (r.get('qty') as number) + 1)
        }
        return at
      }, { system }),
    )
    await eventually(`click ${i + 1} seen in B`, async () => (await b.evaluate(() => (window as Win).seen.length)) > i, 30_000, 2)
  }
  const seen = (await b.evaluate(() => (window as Win).seen)) as number[]
  return sent.map((s, i) => seen[i]! - s)
}

/** Clicks between two tabs connected over WebRTC (met through the Node peer's relay), the Node peer gone. */
async function tabToTab(browser: Browser, base: string, rows: number): Promise<ClickResult> {
  const side = await shoalSide(rows, true)
  try {
    const [a, b] = [await open(browser, base, 'shoal'), await open(browser, base, 'shoal')]
    await load(a, 'shoal', side.ws, rows)
    await load(b, 'shoal', side.ws, rows)
    const idB = await b.evaluate(() => (window as Win).peer.peerId as string)
    const direct = (): Promise<boolean> =>
      a.evaluate((id) => ((window as Win).peer.node.libp2p.getConnections() as Array<{ remotePeer: unknown; remoteAddr: unknown }>).some((c) => String(c.remotePeer) === id && String(c.remoteAddr).includes('/webrtc')), idB)
    await eventually('tabs A and B connected over WebRTC', direct, 60_000, 50)
    await side.peer.stop()
    const ms = await clicks(a, b, 'shoal', CLICKS)
    progress(`  click A → B p50 ${quantile(ms, 0.5).toFixed(1)} ms, p99 ${quantile(ms, 0.99).toFixed(1)} ms`)
    for (const p of [a, b]) {
      await p.evaluate(async () => void (await (window as Win).peer?.stop()))
      await p.context().close()
    }
    return { system: 'shoal, tab to tab (WebRTC)', rows, clicks: CLICKS, p50: quantile(ms, 0.5), p99: quantile(ms, 0.99) }
  } finally {
    await side.close()
  }
}

async function main(): Promise<void> {
  const SRC_HASH = srcHash()
  await prepareSystems(['yjs'], progress)
  const dir = await mkdtemp(join(tmpdir(), 'shoal-bench-browser-'))
  const files = await buildBrowser(dir, { entries: { shoal: join(process.cwd(), 'src/browser.ts') } })
  await build({ entryPoints: [join(baselinesDir(), 'browser', 'yjs-client.ts')], outfile: join(dir, 'yjs-client.js'), bundle: true, format: 'esm', platform: 'browser', minify: true, logLevel: 'warning' })
  const yjsBytes = (await readFile(join(dir, 'yjs-client.js'))).length
  const server = await serve(dir)
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true })
  const loads: LoadResult[] = []
  const latency: ClickResult[] = []
  try {
    for (const rows of ROWS) {
      for (const system of ['shoal', 'yjs'] as const) {
        progress(`${system}: ${fmt(rows)} rows`)
        const side = system === 'shoal' ? await shoalSide(rows) : await yjsSide(rows)
        const target = 'ws' in side ? side.ws : side.url
        try {
          const a = await open(browser, base, system)
          const { interactiveMs, loadedMs } = await load(a, system, target, rows)
          loads.push({ system, rows, interactiveMs, loadedMs, rowsPerSecond: rows / ((loadedMs - interactiveMs) / 1000) })
          progress(`  interactive ${interactiveMs.toFixed(0)} ms, ${fmt(rows)} rows at ${loadedMs.toFixed(0)} ms`)
          if (rows === ROWS[0]) {
            const b = await open(browser, base, system)
            await load(b, system, target, rows)
            const ms = await clicks(a, b, system, CLICKS)
            latency.push({ system, rows, clicks: CLICKS, p50: quantile(ms, 0.5), p99: quantile(ms, 0.99) })
            progress(`  click A → B p50 ${quantile(ms, 0.5).toFixed(1)} ms, p99 ${quantile(ms, 0.99).toFixed(1)} ms`)
            await b.context().close()
          }
          await a.evaluate(async () => void (await (window as Win).peer?.stop()))
          await a.context().close()
        } finally {
          await side.close()
        }
      }
    }
    progress('shoal: tab to tab over WebRTC')
    latency.push(await tabToTab(browser, base, ROWS[0]!))
  } finally {
    await browser.close()
    await new Promise<void>((r) => server.close(() => r()))
    await rm(dir, { recursive: true, force: true })
  }
  const of = (system: string, rows: number): LoadResult => loads.find((l) => l.system === system && l.rows === rows)!
  const table = markdownTable([
    ['rows', 'Shoal: interactive', 'Yjs: interactive', 'Shoal: all rows in', 'Yjs: all rows in', 'Shoal rows/s', 'Yjs rows/s', 'rows/s Shoal ÷ Yjs'],
    ...ROWS.map((rows) => {
      const [s, y] = [of('shoal', rows), of('yjs', rows)]
      return [fmt(rows), `${fmt(s.interactiveMs)} ms`, `${fmt(y.interactiveMs)} ms`, `${fmt(s.loadedMs)} ms`, `${fmt(y.loadedMs)} ms`, fmt(s.rowsPerSecond), fmt(y.rowsPerSecond), fmt(s.rowsPerSecond / y.rowsPerSecond, 2)]
    }),
  ])
  const clicksTable = markdownTable([
    ['click A → B', 'p50', 'p99'],
    ...latency.map((l) => [`${l.system} (${fmt(l.rows)} rows, ${l.clicks} clicks)`, `${fmt(l.p50, 1)} ms`, `${fmt(l.p99, 1)} ms`]),
  ])
  const bundle = { shoalPageGzip: pageBytes(files, 'shoal'), yjsClientBytes: yjsBytes }
  console.log(
    reportText({
      title: 'Shoal browser benchmark',
      quick: PARTIAL,
      seconds: (performance.now() - t0) / 1000,
      srcHash: SRC_HASH,
      sizes: `rows ${ROWS.map((r) => fmt(r)).join(', ')}; ${CLICKS} clicks; headless Chromium ${browser.version()}`,
      table: `${table}\n\n${clicksTable}`,
      targets: `bundle: a Shoal page with Yjs tables loads ${fmt(bundle.shoalPageGzip / 1024, 1)} KiB gzip (goal ≤ 350 KB: ${bundle.shoalPageGzip <= 350_000 ? 'met' : 'MISSED'})`,
      notes: ['interactive: ms from navigation start; all rows in: ms from navigation start; rows/s over the load after interactive'],
    }),
  )
  if (SAVE) progress(`results: ${(await writeResults('browser', PARTIAL ? 'partial' : 'full', { command: `npm run bench:browser -- ${args.argv.join(' ')}`.trim(), machine: machine(), srcHash: SRC_HASH, chromium: browser.version(), rows: ROWS, clicks: CLICKS, loads, latency, bundle })).join(', ')}`)
}

await main()
