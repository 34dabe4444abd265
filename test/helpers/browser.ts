import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'
import { afterAll } from 'vitest'
import { buildBrowser } from '../../scripts/browser-build.js'

/*
 * Real Chromium for browser tests: Debian's package (/usr/bin/chromium, installed by .ci/run)
 * driven by playwright-core, the library bundled by scripts/browser-build.ts and served from
 * 127.0.0.1. Without Chromium the tests are skipped, saying why, unless SHOAL_REQUIRE_BROWSER=1
 * (CI), under which a missing browser fails the run.
 */

/** The stock table of the browser tests: partitioned by store, a counter and a text column. */
export const STOCK = {
  name: 'stock',
  primaryKey: 'id',
  partitionBy: 'store',
  engine: 'yjs',
  columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', note: 'text' },
}

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/**
 * Tests use 127.0.0.1 only, but ICE gathers candidates on every interface of the machine (and
 * never on loopback): WebRTC tests relay through a TURN server on 127.0.0.1 (helpers/turn.ts).
 * Run in every test page before its scripts, this guard makes sure of it: a tab takes in only
 * the other side's 127.0.0.1 candidates, so no check or data goes anywhere else. It also keeps
 * the page's peer connections, for webrtcPaths.
 */
const LOOPBACK_ONLY = `(() => {
  const Native = globalThis.RTCPeerConnection
  if (Native === undefined) return
  const made = (globalThis.shoalTestPeerConnections = [])
  globalThis.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args)
      made.push(this)
    }
  }
  const loopback = (line) => line.split(' ')[4] === '127.0.0.1'
  const addIceCandidate = Native.prototype.addIceCandidate
  Native.prototype.addIceCandidate = function (candidate, ...rest) {
    const text = typeof candidate?.candidate === 'string' ? candidate.candidate : ''
    if (text !== '' && !loopback(text)) return Promise.resolve()
    return addIceCandidate.call(this, candidate, ...rest)
  }
  const setRemoteDescription = Native.prototype.setRemoteDescription
  Native.prototype.setRemoteDescription = function (description, ...rest) {
    if (typeof description?.sdp === 'string') {
      const sdp = description.sdp.split('\\r\\n').filter((l) => !l.startsWith('a=candidate:') || loopback(l.slice(2))).join('\\r\\n')
      description = { type: description.type, sdp }
    }
    return setRemoteDescription.call(this, description, ...rest)
  }
})()`

/** Whether browser tests can run here; throws under SHOAL_REQUIRE_BROWSER=1 when they cannot. */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true
  const why = `${CHROMIUM} is missing (apt-get install -y chromium)`
  if (process.env.SHOAL_REQUIRE_BROWSER === '1') throw new Error(`${why} (SHOAL_REQUIRE_BROWSER=1: a missing browser fails the run)`)
  console.warn(`skipping browser tests: ${why}`)
  return false
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' }

const PAGE = `<!doctype html><meta charset="utf-8"><title>shoal test</title>
<script type="module">window.shoal = await import('/shoal.js'); window.shoalReady = true</script>`

export interface BrowserHarness {
  browser: Browser
  /** Where the test page is served (http://127.0.0.1:<port>/). */
  url: string
  /** The build: the library and the web app (a peer serves it with `uiDir`). */
  dir: string
  /** A fresh context (its own IndexedDB, the loopback-only WebRTC guard); use it rather than browser.newContext. */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>
  /**
   * A fresh context (its own IndexedDB) with the page loaded and `window.shoal` imported.
   * `debug`: the page's `localStorage.debug` (libp2p's loggers, e.g. 'libp2p:webrtc*'), whose
   * lines `consoleOf` keeps.
   */
  openPage(context?: BrowserContext, options?: { debug?: string }): Promise<Page>
  /** The page's last console lines (at most CONSOLE_LINES), oldest first: what a failing test prints. */
  consoleOf(page: Page): string[]
  close(): Promise<void>
}

/** Console lines kept per page (consoleOf). */
export const CONSOLE_LINES = 400

/** The local and remote address of each connected WebRTC peer connection's selected candidate pair in the page ('127.0.0.1 → 127.0.0.1'). */
export async function webrtcPaths(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const out: string[] = []
    for (const pc of (globalThis as unknown as { shoalTestPeerConnections: RTCPeerConnection[] }).shoalTestPeerConnections) {
      if (pc.connectionState !== 'connected') continue
      const stats: Array<Record<string, unknown>> = []
      ;(await pc.getStats()).forEach((s: Record<string, unknown>) => stats.push(s))
      const transport = stats.find((s) => s.type === 'transport' && typeof s.selectedCandidatePairId === 'string')
      const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId)
      const address = (id: unknown): string => String(stats.find((s) => s.id === id)?.address)
      out.push(pair === undefined ? 'no selected pair' : `${address(pair.localCandidateId)} → ${address(pair.remoteCandidateId)}`)
    }
    return out
  })
}

/** Builds the bundle, serves it with a test page, and launches Chromium; closed after the file's tests. */
export async function startBrowser(): Promise<BrowserHarness> {
  const outdir = await mkdtemp(join(tmpdir(), 'shoal-browser-'))
  await buildBrowser(outdir)
  const server = await serve(outdir)
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no server address')
  const url = `http://127.0.0.1:${address.port}/`
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true })
  const errors: string[] = []
  const consoles = new WeakMap<Page, string[]>()
  const harness: BrowserHarness = {
    browser,
    url,
    dir: outdir,
    async newContext(options?: BrowserContextOptions): Promise<BrowserContext> {
      const context = await browser.newContext(options)
      await context.addInitScript(LOOPBACK_ONLY)
      return context
    },
    async openPage(context?: BrowserContext, options?: { debug?: string }): Promise<Page> {
      const ctx = context ?? (await harness.newContext())
      const page = await ctx.newPage()
      page.on('pageerror', (e) => errors.push(e.message))
      const lines: string[] = []
      consoles.set(page, lines)
      const started = Date.now()
      page.on('console', (m) => {
        // The debug package styles its lines with %c and a CSS argument each: left out here.
        const text = m.text().replace(/%c/g, '').replace(/ ?color: (#[0-9a-f]{6}|inherit)/gi, '')
        lines.push(`+${((Date.now() - started) / 1000).toFixed(3)}s ${m.type()}: ${text}`)
        if (lines.length > CONSOLE_LINES) lines.splice(0, lines.length - CONSOLE_LINES)
      })
      if (options?.debug !== undefined) await page.addInitScript((debug) => localStorage.setItem('debug', debug), options.debug)
      await page.goto(url)
      await page.waitForFunction(() => (window as unknown as { shoalReady?: boolean }).shoalReady === true, undefined, { timeout: 30_000 })
      return page
    },
    consoleOf(page: Page): string[] {
      return [...(consoles.get(page) ?? [])]
    },
    async close(): Promise<void> {
      await browser.close()
      await new Promise<void>((r) => server.close(() => r()))
      await rm(outdir, { recursive: true, force: true })
      if (errors.length > 0) throw new Error(`uncaught errors in pages: ${errors.join(' | ')}`)
    },
  }
  afterAll(() => harness.close())
  return harness
}

function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname
    if (path === '/') {
      res.writeHead(200, { 'content-type': TYPES['.html']! }).end(PAGE)
      return
    }
    const file = normalize(join(dir, path))
    if (!file.startsWith(dir + '/')) {
      res.writeHead(404).end()
      return
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end(),
    )
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}
