import { mkdir, writeFile } from 'node:fs/promises'
import { request, type IncomingHttpHeaders } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { HttpStartError } from '../../src/http/errors.js'
import { startHttpApi, type HttpApi } from '../../src/http/server.js'
import { createApiToken } from '../../src/http/token.js'
import type { UiPeerInfo } from '../../src/http/ui.js'
import { Shoal } from '../../src/shoal.js'
import type { PeerCounters } from '../../src/status.js'
import { tempDir } from '../helpers/tempdir.js'

/* The web app's files at /ui/: public (no token) but still only under the API's own Host, nothing outside the built app, and the API itself still locked. */

const TOKEN = createApiToken()
const counters: PeerCounters = { deltasIn: 0, deltasOut: 0, bytesIn: 0, bytesOut: 0, syncRounds: 0, syncRoundsFailed: 0, rowsRepaired: 0, syncPartitionsByFeed: 0, syncPartitionsByTree: 0, refused: 0, refusedByReason: {}, connectedPeers: 0, syncBytesByMessage: {}, syncByPeer: [] }
const INFO: UiPeerInfo = { peerId: '12D3KooWui', mesh: null, webSockets: [{ port: 4002, secure: false }], storeTables: ['stock'] }
const open: Array<{ api: HttpApi; db: Shoal }> = []

afterEach(async () => {
  for (const { api, db } of open.splice(0)) {
    await api.close()
    await db.close()
  }
})

async function built(): Promise<string> {
  const dir = await tempDir()
  await mkdir(join(dir, 'chunks'))
  await writeFile(join(dir, 'index.html'), '<!doctype html><script type="module" src="ui.js"></script>')
  await writeFile(join(dir, 'ui.js'), 'import "./chunks/lib.js"')
  await writeFile(join(dir, 'chunks', 'lib.js'), 'export {}')
  await writeFile(join(dir, 'notes.txt'), 'not part of the app')
  return dir
}

async function serve(uiDir: string): Promise<HttpApi> {
  const db = await Shoal.open({ dir: await tempDir() })
  const api = await startHttpApi({
    token: TOKEN,
    host: '127.0.0.1',
    port: 0,
    db,
    status: () => Promise.reject(new Error('unused')),
    counters: () => counters,
    ui: { dir: uiDir, info: () => INFO },
  }).catch(async (error: unknown) => {
    await db.close()
    throw error
  })
  open.push({ api, db })
  return api
}

function get(api: HttpApi, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const url = new URL(api.url)
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: Number(url.port), path, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('the web app at /ui/', () => {
  it('serves the page, its scripts and how to reach the peer without a token, with a strict content policy', async () => {
    const api = await serve(await built())
    const page = await get(api, '/ui/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws: wss:/)
    expect(page.headers['x-content-type-options']).toBe('nosniff')
    expect((await get(api, '/ui/ui.js')).headers['content-type']).toBe('text/javascript; charset=utf-8')
    // Module scripts are fetched with the page's Origin: the app's own files take it.
    expect((await get(api, '/ui/chunks/lib.js', { origin: api.url })).status).toBe(200)
    expect(JSON.parse((await get(api, '/ui/config.json')).body)).toEqual(INFO)
    const bare = await get(api, '/ui')
    expect([bare.status, bare.headers.location]).toEqual([308, '/ui/'])
  })

  it('serves nothing outside the built app, and the API still needs its token', async () => {
    const api = await serve(await built())
    for (const path of ['/ui/notes.txt', '/ui/..%2Fapi.json', '/ui/chunks/..%2F..%2Fetc%2Fpasswd', '/ui/missing.js']) expect((await get(api, path)).status, path).toBe(404)
    expect((await get(api, '/v1/status')).status).toBe(401)
    expect((await get(api, '/v1/tables/stock/rows/a', { origin: api.url })).status).toBe(403)
  })

  it('answers only under its own Host name (a rebinding page cannot read it)', async () => {
    const api = await serve(await built())
    const refused = await get(api, '/ui/config.json', { host: 'evil.example:80' })
    expect(refused.status).toBe(403)
    expect(refused.body).toMatch(/HOST_REFUSED/)
  })

  it('refuses to start when the app was never built, saying how to build it', async () => {
    await expect(serve(join(await tempDir(), 'nothing-here'))).rejects.toThrow(HttpStartError)
    await expect(serve(join(await tempDir(), 'nothing-here'))).rejects.toThrow(/run 'npm run build', or start without --ui/)
  })
})
