import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { describe, expect, it } from 'vitest'
import { readApiFile } from '../../src/http/api-file.js'
import type { Page } from 'playwright-core'
import { browserAvailable, startBrowser, type BrowserHarness, STOCK } from '../helpers/browser.js'
import { eventually, startPeer, type TestPeer } from '../helpers/peers.js'
import { tempDir } from '../helpers/tempdir.js'

/* A browser tab as an equal peer: real Chromium, the bundled library, IndexedDB, libp2p WebSockets to a Node peer on 127.0.0.1. */


type Shoal = typeof import('../../src/browser.js')
type Win = Window & { shoal: Shoal; peer: import('../../src/browser.js').BrowserPeer }

const NOTES = { name: 'notes', primaryKey: 'id', engine: 'automerge', columns: { id: 'string', body: 'text', pinned: 'boolean' } }

async function nodePeer(http = false): Promise<{ peer: TestPeer; ws: string }> {
  const peer = await startPeer({ tables: [STOCK], listen: ['/ip4/127.0.0.1/tcp/0/ws'], ...(http ? { http: '127.0.0.1:0' } : {}) })
  const ws = peer.peer.node
    .multiaddrs()
    .map((a) => a.toString())
    .find((a) => a.includes('/ws/'))
  if (ws === undefined) throw new Error(`the Node peer has no WebSocket address: ${peer.peer.node.multiaddrs().join(', ')}`)
  return { peer, ws }
}

async function startTab(page: Page, bootstrap: string, options: { carries?: Record<string, string[]>; name?: string } = {}): Promise<string> {
  return page.evaluate(
    async ({ bootstrap, table, options }) => {
      const w = window as unknown as Win
      w.peer = await w.shoal.BrowserPeer.start({ bootstrap: [bootstrap], tables: [table as never], sync: { intervalMs: 500, connectDelayMs: 100 }, ...options })
      return w.peer.peerId
    },
    { bootstrap, table: STOCK, options },
  )
}

async function tabRow(page: Page, key: string, table = 'stock'): Promise<Record<string, unknown> | null> {
  return page.evaluate(
    async ({ key, table }) => {
      const w = window as unknown as Win
      // A table that has not arrived from the mesh yet holds no rows.
      if (!w.peer.db.tables().some((t) => t.name === table)) return null
      return (await w.peer.db.table(table).get(key)) as Record<string, unknown> | null
    },
    { key, table },
  )
}

async function press(page: Page, key: string, times: number): Promise<void> {
  await page.evaluate(
    async ({ key, times }) => {
      const w = window as unknown as Win
      for (let i = 0; i < times; i++) await w.peer.db.table('stock').increment(key, 'qty', 1)
    },
    { key, times },
  )
}

/** The row as the Node peer's HTTP API answers GET /v1/tables/stock/rows/<key>. */
async function overHttp(peer: TestPeer, key: string): Promise<Record<string, unknown> | null> {
  const api = await readApiFile(peer.dir)
  if (api === null) throw new Error('the Node peer wrote no api.json')
  const res = await fetch(`${api.url}/v1/tables/stock/rows/${encodeURIComponent(key)}`, { headers: { authorization: `Bearer ${api.token}` } })
  if (res.status === 404) return null
  return ((await res.json()) as { row: Record<string, unknown> }).row
}

describe.skipIf(!browserAvailable())('a browser peer in Chromium', () => {
  let harness: BrowserHarness

  it('replicates rows both ways with a Node peer over WebSockets', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    const page = await harness.openPage()
    const id = await startTab(page, ws)
    expect(id).toMatch(/^12D3KooW/)
    await page.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').put('s1-apple', { store: 's1', sku: 'apple', qty: 5 })
    })
    const nodeStock = peer.peer.db.table('stock')
    await eventually('the tab row on the Node peer', async () => (await nodeStock.get('s1-apple'))?.qty === 5)
    await nodeStock.put('s2-pear', { store: 's2', sku: 'pear', qty: 3 })
    await eventually('the Node row in the tab', async () => (await tabRow(page, 's2-pear'))?.qty === 3)
  })

  it('refuses malformed webrtc options before opening anything, saying what is wrong', async () => {
    harness ??= await startBrowser()
    const page = await harness.openPage()
    const refused = await page.evaluate(async () => {
      const w = window as unknown as Win
      const out: string[] = []
      for (const webrtc of [{ iceServers: 'stun:x' }, { iceTransportPolicy: 'relay' }, { iceTransportPolicy: 'nearest' }, { stun: true }, 42]) {
        try {
          await w.shoal.BrowserPeer.start({ name: 'bad-webrtc', bootstrap: [], webrtc: webrtc as never })
          out.push('started')
        } catch (error) {
          out.push(`${(error as { code?: string }).code}: ${(error as Error).message}`)
        }
      }
      return out
    })
    expect(refused).toHaveLength(5)
    for (const r of refused) expect(r).toMatch(/^NET_START_FAILED: 'webrtc/)
    expect(refused[0]).toContain("'iceServers' must be a list of { urls }")
    expect(refused[1]).toContain('needs a TURN server')
    expect(refused[2]).toContain(`'iceTransportPolicy' is "nearest"`)
    expect(refused[3]).toContain(`'stun' is not an option`)
  })

  it('joins over wss through a TLS-terminating proxy in front of the Node peer’s /ws', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    // What nginx or a load balancer does in front of a peer: TLS outside, the plain /ws port inside.
    const dir = await tempDir()
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')]
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' })
    const wsPort = Number(/\/tcp\/(\d+)\/ws\//.exec(ws)![1])
    const sockets = new Set<{ destroy(): void }>()
    const proxy = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (outside) => {
      const inside = connect(wsPort, '127.0.0.1')
      for (const s of [inside, outside]) sockets.add(s)
      outside.pipe(inside).pipe(outside)
      outside.on('error', () => inside.destroy())
      inside.on('error', () => outside.destroy())
    })
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
    try {
      const wss = `/ip4/127.0.0.1/tcp/${(proxy.address() as AddressInfo).port}/tls/ws/p2p/${peer.peer.node.peerId.toString()}`
      // The certificate is self-signed: the context trusts it as a browser trusts a real one.
      const page = await harness.openPage(await harness.newContext({ ignoreHTTPSErrors: true }))
      await startTab(page, wss)
      await page.evaluate(async () => {
        const w = window as unknown as Win
        await w.peer.db.table('stock').put('s3-kiwi', { store: 's3', sku: 'kiwi', qty: 9 })
      })
      await eventually('the tab’s row on the Node peer, over wss', async () => (await peer.peer.db.table('stock').get('s3-kiwi'))?.qty === 9)
      const addrs = await page.evaluate(() => (window as unknown as Win).peer.node.libp2p.getConnections().map((c) => c.remoteAddr.toString()))
      expect(addrs).toEqual([wss])
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  it('a counter pressed in two tabs converges to the sum in both tabs and on the Node peer', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer(true)
    await peer.peer.db.table('stock').put('s1-apple', { store: 's1', sku: 'apple', qty: 10 })
    const [a, b] = [await harness.openPage(), await harness.openPage()]
    await Promise.all([startTab(a, ws), startTab(b, ws)])
    await eventually('the row in both tabs', async () => (await tabRow(a, 's1-apple'))?.qty === 10 && (await tabRow(b, 's1-apple'))?.qty === 10)
    await Promise.all([press(a, 's1-apple', 7), press(b, 's1-apple', 5)])
    await eventually('17 + 10 everywhere', async () => (await tabRow(a, 's1-apple'))?.qty === 22 && (await tabRow(b, 's1-apple'))?.qty === 22 && (await overHttp(peer, 's1-apple'))?.qty === 22)
  })

  it('two tabs typing into the same note at once keep both texts, identical in both', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    await peer.peer.db.table('stock').put('s1-apple', { store: 's1', sku: 'apple', qty: 1, note: '' })
    const [a, b] = [await harness.openPage(), await harness.openPage()]
    await Promise.all([startTab(a, ws), startTab(b, ws)])
    await eventually('the row in both tabs', async () => (await tabRow(a, 's1-apple')) !== null && (await tabRow(b, 's1-apple')) !== null)
    const type = (page: Page, text: string): Promise<void> =>
      page.evaluate(async (text) => {
        const w = window as unknown as Win
        // Letter by letter at the end of what this tab sees, as a person types.
        for (const ch of text) {
          const row = await w.peer.db.table('stock').get('s1-apple')
          await w.peer.db.table('stock').editText('s1-apple', 'note', { index: String(row?.note ?? '').length, insert: ch })
        }
      }, text)
    await Promise.all([type(a, 'ripe'), type(b, 'FRESH')])
    const note = async (page: Page): Promise<string> => String((await tabRow(page, 's1-apple'))?.note ?? '')
    await eventually('one note in both tabs and on the Node peer', async () => {
      const [x, y] = [await note(a), await note(b)]
      return x.length === 9 && x === y && (await peer.peer.db.table('stock').get('s1-apple'))?.note === x
    })
    // Every letter of both survives. (Their order within a word depends on where each tab saw the
    // end of the note when it typed: an index read before a remote letter arrived may fall
    // before the tab's own last letter, as in any editor that types at stale offsets.)
    expect([...(await note(a))].sort().join('')).toBe([...'ripeFRESH'].sort().join(''))
  })

  it('a tab that goes offline keeps writing, and both sides catch up when it is back', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    const context = await harness.newContext()
    const page = await harness.openPage(context)
    await startTab(page, ws)
    await page.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').put('s1-apple', { store: 's1', sku: 'apple', qty: 1 })
    })
    await eventually('the first row on the Node peer', async () => (await peer.peer.db.table('stock').get('s1-apple')) !== null)
    await context.setOffline(true)
    await eventually('the tab has lost its Node peer', async () => (await page.evaluate(() => (window as unknown as Win).peer.node.connectedPeers().length)) === 0)
    await press(page, 's1-apple', 4)
    await page.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').put('s1-offline', { store: 's1', sku: 'fig', qty: 2 })
    })
    await peer.peer.db.table('stock').put('s2-pear', { store: 's2', sku: 'pear', qty: 3 })
    await peer.peer.db.table('stock').increment('s1-apple', 'qty', 10)
    await context.setOffline(false)
    await eventually('the offline writes on the Node peer and the Node writes in the tab', async () => {
      const node = peer.peer.db.table('stock')
      return (
        (await node.get('s1-apple'))?.qty === 15 &&
        (await node.get('s1-offline'))?.qty === 2 &&
        (await tabRow(page, 's1-apple'))?.qty === 15 &&
        (await tabRow(page, 's2-pear'))?.qty === 3
      )
    }, 60_000)
  })

  it('a reloaded tab keeps its rows (IndexedDB) and catches up on what it missed', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    const page = await harness.openPage()
    const id = await startTab(page, ws)
    await page.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').put('s1-tab', { store: 's1', sku: 'kiwi', qty: 8 })
    })
    await eventually('the tab row on the Node peer', async () => (await peer.peer.db.table('stock').get('s1-tab')) !== null)
    await page.evaluate(() => (window as unknown as Win).peer.stop())
    await peer.peer.db.table('stock').put('s2-missed', { store: 's2', sku: 'plum', qty: 4 })
    await page.reload()
    await page.waitForFunction(() => (window as unknown as { shoalReady?: boolean }).shoalReady === true)
    // Before joining: what was stored survives the reload.
    const kept = await page.evaluate(async (table) => {
      const w = window as unknown as Win
      const db = await w.shoal.Shoal.open({ dir: 'shoal' })
      await db.defineTable(table as never)
      const row = await db.table('stock').get('s1-tab')
      await db.close()
      return row
    }, STOCK)
    expect(kept?.qty).toBe(8)
    expect(await startTab(page, ws)).toBe(id)
    await eventually('the missed row in the reloaded tab', async () => (await tabRow(page, 's2-missed'))?.qty === 4)
  })

  it("a tab carrying one store's partition never receives another store's rows", async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    const stock = peer.peer.db.table('stock')
    for (let i = 0; i < 20; i++) await stock.put(`s1-${i}`, { store: 's1', sku: `sku-${i}`, qty: i })
    for (let i = 0; i < 20; i++) await stock.put(`s2-${i}`, { store: 's2', sku: `sku-${i}`, qty: i })
    const page = await harness.openPage()
    await startTab(page, ws, { carries: { stock: ['s1'] } })
    await eventually("store s1's rows in the tab", async () => (await tabRow(page, 's1-19'))?.qty === 19)
    await stock.put('s2-late', { store: 's2', sku: 'late', qty: 1 })
    await stock.put('s1-late', { store: 's1', sku: 'late', qty: 1 })
    await eventually('the late s1 row in the tab', async () => (await tabRow(page, 's1-late')) !== null)
    const partitions = await page.evaluate(async () => {
      const w = window as unknown as Win
      const seen = new Set<string>()
      let after: string | undefined
      for (;;) {
        const page = await w.peer.db.table('stock').scan({ limit: 100, ...(after === undefined ? {} : { after }) })
        for (const row of page.rows) seen.add(String(row.store))
        if (page.next === null) break
        after = page.next
      }
      return [...seen]
    })
    expect(partitions).toEqual(['s1'])
  })

  it('loads the Automerge engine only when a table uses it, and replicates its rows', async () => {
    harness ??= await startBrowser()
    const { peer, ws } = await nodePeer()
    await peer.peer.db.defineTable(NOTES as never)
    await peer.peer.db.table('notes').put('n1', { body: 'hello', pinned: true })
    const page = await harness.openPage()
    const requests: string[] = []
    page.on('request', (r) => requests.push(new URL(r.url()).pathname))
    await startTab(page, ws)
    expect(requests.filter((p) => p.includes('automerge'))).toEqual([])
    await eventually('the automerge row in the tab', async () => (await tabRow(page, 'n1', 'notes'))?.body === 'hello')
    expect(requests.filter((p) => p.includes('automerge')).length).toBe(1)
    await page.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('notes').editText('n1', 'body', { index: 5, insert: ', world' })
    })
    await eventually('the tab edit on the Node peer', async () => (await peer.peer.db.table('notes').get('n1'))?.body === 'hello, world')
  })
})
