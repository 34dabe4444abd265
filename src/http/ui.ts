import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HttpError, HttpStartError } from './errors.js'
import type { Router } from './router.js'

/*
 * The web app a peer serves at /ui/ (config "ui", `shoal start --ui`): the stock board built by
 * `npm run build` into dist/browser (src/ui/), and config.json telling the page how to reach this
 * peer over WebSockets. The files are public (no token: a browser cannot send one for a page it
 * navigates to) and hold no data; the rows travel over libp2p, to the tab's own peer.
 */

/** What the page needs to join the mesh through the peer that served it. */
export interface UiPeerInfo {
  peerId: string
  /** The private mesh the peer runs in (a tab must be admitted: `shoal mesh admit --link`), or null for an open mesh. */
  mesh: string | null
  /** WebSocket listeners (none: browser peers cannot connect; the page says so). */
  webSockets: Array<{ port: number; secure: boolean }>
  /** Tables partitioned by store: a tab opened with ?store=… carries only that store of them. */
  storeTables: string[]
}

export interface UiInit {
  /** The built app (default: dist/browser of this package). */
  dir?: string
  info: () => UiPeerInfo
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

/**
 * Only this page's own scripts run; it connects to WebSockets (the mesh) and its own origin;
 * WASM (Automerge) may compile. Nothing may frame it.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws: wss:; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
}

/** dist/browser of the package this module belongs to (found from its package.json upward). */
export function defaultUiDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'browser')
    const up = dirname(dir)
    if (up === dir) return join(dirname(fileURLToPath(import.meta.url)), 'browser')
    dir = up
  }
}

/** Adds GET /ui, /ui/, /ui/config.json and the app's files; HttpStartError when the app was never built. */
export async function addUiRoutes(router: Router, init: UiInit): Promise<void> {
  const dir = init.dir ?? defaultUiDir()
  const files = new Set<string>()
  try {
    for (const name of await readdir(dir)) if (TYPES[extname(name)] !== undefined) files.add(name)
    for (const name of await readdir(join(dir, 'chunks')).catch(() => [] as string[])) if (extname(name) === '.js') files.add(`chunks/${name}`)
  } catch (error) {
    throw new HttpStartError(`the web app is not built (${dir} cannot be read: ${(error as Error).message}); run 'npm run build', or start without --ui`, { cause: error })
  }
  if (!files.has('index.html') || !files.has('ui.js')) throw new HttpStartError(`the web app in ${dir} is incomplete (no index.html or ui.js); run 'npm run build', or start without --ui`)
  const cache = new Map<string, Uint8Array>()
  const file = async (name: string): Promise<{ text: Uint8Array; contentType: string; headers: Record<string, string> }> => {
    if (!files.has(name)) throw new HttpError(404, 'NOT_FOUND', `no such file in the web app: /ui/${name}`)
    let bytes = cache.get(name)
    if (bytes === undefined) {
      bytes = await readFile(join(dir, name))
      cache.set(name, bytes)
    }
    return { text: bytes, contentType: TYPES[extname(name)]!, headers: PAGE_HEADERS }
  }
  for (const method of ['GET', 'HEAD']) {
    router.on(method, '/ui', async () => ({ status: 308, text: 'the web app is at /ui/\n', contentType: 'text/plain; charset=utf-8', headers: { location: '/ui/' } }))
    router.on(method, '/ui/', () => file('index.html'))
    router.on(method, '/ui/config.json', async () => ({ json: init.info(), headers: { 'cache-control': 'no-store' } }))
    router.on(method, '/ui/:file', async (ctx) => file(ctx.params.file!))
    router.on(method, '/ui/chunks/:file', async (ctx) => file(`chunks/${ctx.params.file!}`))
  }
}

/** Whether a request is for the web app's public files (GET or HEAD under /ui). */
export function isUiRequest(method: string, target: string): boolean {
  const path = target.split('?')[0]!
  return (method === 'GET' || method === 'HEAD') && (path === '/ui' || path.startsWith('/ui/'))
}
