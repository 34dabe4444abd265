import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { seedDemo } from '../../src/cli/demo.js'
import { encodeJoinCode } from '../../src/trust/join-code.js'
import { browserAvailable, startBrowser } from '../helpers/browser.js'
import { memberFolder, testMesh } from '../helpers/mesh.js'
import { eventually, startPeer } from '../helpers/peers.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * Browser peers in a private mesh: no mesh secret in any page (WebSocket connections are left to
 * Noise and admission). A tab joins with the admission link the authority makes for its own key;
 * a stranger tab connects but receives nothing and writes nothing.
 */

const TABLES = [
  { name: 'catalog', primaryKey: 'sku', engine: 'yjs', columns: { sku: 'string', name: 'string', price: 'number', description: 'text' } },
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'yjs', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string', note: 'text' } },
]

type Win = Window & { shoal: typeof import('../../src/browser.js'); peer: import('../../src/browser.js').BrowserPeer }

describe.skipIf(!browserAvailable())('browser peers in a private mesh (Chromium)', () => {
  it('a tab joins with its admission link and replicates its store; a stranger tab gets nothing and writes nothing', async () => {
    const harness = await startBrowser()
    const mesh = await testMesh()
    const dir = await tempDir()
    const hqFolder = await memberFolder(mesh, dir, 'hq', [])
    const hq = await startPeer({ dir, trust: hqFolder.material, tables: TABLES, listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'], http: '127.0.0.1:0', ui: true, uiDir: harness.dir })
    await seedDemo(hq.peer)
    const stock = hq.peer.db.table('stock')
    const url = `${hq.peer.http!.url}/ui/?store=s1`

    // The board, before admission: the tab's own peer id and the command to admit it.
    const tab = await (await harness.newContext()).newPage()
    await tab.goto(url)
    const tabId = await tab.locator('[data-testid=peer-id]').innerText({ timeout: 30_000 })
    expect(await tab.locator('[data-testid=admit-command]').innerText()).toContain(`--peer ${tabId} --group <group> --partitions s1 --link '${url}'`)

    // The authority admits it (as `shoal mesh admit --link` does): the link holds admission and rules.
    const code = encodeJoinCode({ mesh: mesh.id, documents: [await mesh.admit(tabId, 'store', ['s1']), mesh.rules] })
    await tab.goto(`${url}#join=${code}`)
    await tab.locator('tr[data-key="s1-apple"]').waitFor({ timeout: 30_000 })
    expect(new URL(tab.url()).hash).toBe('')
    const before = Number((await stock.get('s1-apple'))?.qty)
    await tab.locator('tr[data-key="s1-apple"] button[aria-label^="one more"]').click()
    await eventually('the admitted tab’s press on the hq peer', async () => (await stock.get('s1-apple'))?.qty === before + 1)
    expect(await tab.locator('tr[data-key^="s2-"]').count()).toBe(0)

    // A stranger: the library in another tab, no admission, dialling hq's WebSocket address.
    const ws = hq.peer.node.multiaddrs().map(String).find((a) => a.includes('/ws/'))!
    const stranger = await harness.openPage()
    const refusedBefore = hq.peer.refusals.counts().NOT_ADMITTED ?? 0
    await stranger.evaluate(
      async ({ ws, table }) => {
        const w = window as unknown as Win
        w.peer = await w.shoal.BrowserPeer.start({ name: 'stranger', bootstrap: [ws], tables: [table as never] })
        await w.peer.db.table('stock').put('s1-forged', { store: 's1', sku: 'apple', qty: 1000 })
      },
      { ws, table: TABLES[1] },
    )
    await eventually('hq refuses the stranger', () => (hq.peer.refusals.counts().NOT_ADMITTED ?? 0) > refusedBefore, 30_000)
    const strangerRows = async (p: Page): Promise<string[]> =>
      p.evaluate(async () => {
        const w = window as unknown as Win
        return (await w.peer.db.table('stock').scan({ limit: 100 })).rows.map((r) => String(r.id))
      })
    expect(await strangerRows(stranger)).toEqual(['s1-forged'])
    expect(await stock.get('s1-forged')).toBeNull()
    await eventually('hq hung up on the stranger', async () => (await stranger.evaluate(() => (window as unknown as Win).peer.node.connectedPeers().length)) === 0)

    // A code made for another peer's key admits nobody: the stranger cannot use the tab's link.
    const refused = await stranger.evaluate(async ({ ws, code }) => {
      const w = window as unknown as Win
      try {
        await w.shoal.BrowserPeer.start({ name: 'thief', bootstrap: [ws], mesh: code })
        return 'started'
      } catch (error) {
        return `${(error as { code?: string }).code}: ${(error as Error).message}`
      }
    }, { ws, code })
    expect(refused).toMatch(/^NOT_ADMITTED: this peer \(12D3KooW\w+\) has no admission to mesh/)
  })
})
