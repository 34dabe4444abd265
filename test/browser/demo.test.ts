import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { seedDemo } from '../../src/cli/demo.js'
import { ROOT } from '../../scripts/browser-build.js'
import { browserAvailable, startBrowser } from '../helpers/browser.js'
import { eventually, startPeer } from '../helpers/peers.js'

/*
 * The demo app (src/ui/) as people use it: served by a Node peer at /ui/, two browser contexts
 * (each its own IndexedDB, so two peers) on one store's board. The screenshots in the README come
 * from this test (docs/screenshots/).
 */

const TABLES = [
  { name: 'catalog', primaryKey: 'sku', engine: 'yjs', columns: { sku: 'string', name: 'string', price: 'number', description: 'text' } },
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'yjs', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string', note: 'text' } },
]

const SHOTS = join(ROOT, 'docs', 'screenshots')

const qty = async (page: Page, key: string): Promise<number> => Number(await page.locator(`tr[data-key="${key}"] [data-testid=qty]`).innerText())

describe.skipIf(!browserAvailable())('the stock board (demo app) in Chromium', () => {
  it('two people press counters, type one note and go offline; everything merges, on the boards and on the peer', async () => {
    const harness = await startBrowser()
    const node = await startPeer({ tables: TABLES, listen: ['/ip4/127.0.0.1/tcp/0/ws'], http: '127.0.0.1:0', ui: true, uiDir: harness.dir })
    await seedDemo(node.peer)
    const stock = node.peer.db.table('stock')
    await stock.put('s1-apple', { note: 'apples' })
    const start = Number((await stock.get('s1-apple'))?.qty)
    const url = `${node.peer.http!.url}/ui/?store=s1`
    const open = async (): Promise<Page> => {
      const page = await (await harness.newContext({ viewport: { width: 1200, height: 720 } })).newPage()
      await page.goto(url)
      await page.locator('tr[data-key="s1-pear"]').waitFor({ timeout: 30_000 })
      return page
    }
    const [a, b] = [await open(), await open()]
    // The other store's rows are not carried by a tab of store s1.
    expect(await a.locator('tr[data-key^="s2-"]').count()).toBe(0)

    const plus = (page: Page, key: string): Promise<void> => page.locator(`tr[data-key="${key}"] button[aria-label^="one more"]`).click()
    const minus = (page: Page, key: string): Promise<void> => page.locator(`tr[data-key="${key}"] button[aria-label^="one less"]`).click()
    await Promise.all([(async () => { for (let i = 0; i < 3; i++) await plus(a, 's1-apple') })(), minus(b, 's1-apple')])
    await eventually('+3 −1 on both boards and on the peer', async () => (await qty(a, 's1-apple')) === start + 2 && (await qty(b, 's1-apple')) === start + 2 && (await stock.get('s1-apple'))?.qty === start + 2)

    // One types at the end of the note, the other at its start, at the same time: both words
    // land where their authors put them, and neither caret is thrown off by the other's letters.
    const note = (page: Page) => page.locator('tr[data-key="s1-apple"] textarea')
    await eventually('the seeded note in both tabs', async () => (await note(a).inputValue()) === 'apples' && (await note(b).inputValue()) === 'apples')
    const typeAt = async (page: Page, where: 'End' | 'Home', text: string): Promise<void> => {
      await note(page).click()
      await page.keyboard.press(`Control+${where}`)
      await page.keyboard.type(text, { delay: 25 })
    }
    await Promise.all([typeAt(a, 'End', ' ripe, from the orchard'), typeAt(b, 'Home', 'Fresh ')])
    await eventually('both words in one note, the same in both tabs and on the peer', async () => {
      const [x, y] = [await note(a).inputValue(), await note(b).inputValue()]
      return x === 'Fresh apples ripe, from the orchard' && y === x && (await stock.get('s1-apple'))?.note === x
    })

    await mkdir(SHOTS, { recursive: true })
    await a.screenshot({ path: join(SHOTS, 'stock-board.png') })

    // A goes offline with the switch, keeps pressing; B presses too.
    const bread = Number((await stock.get('s1-bread'))?.qty)
    await a.locator('[data-testid=online]').uncheck()
    await eventually('A shows it is offline', async () => (await a.locator('[data-testid=sync]').innerText()).includes('offline'))
    for (let i = 0; i < 2; i++) await plus(a, 's1-bread')
    await plus(b, 's1-bread')
    await eventually('B and the peer have B’s press, A has its own two', async () => (await stock.get('s1-bread'))?.qty === bread + 1 && (await qty(b, 's1-bread')) === bread + 1 && (await qty(a, 's1-bread')) === bread + 2)
    expect(await a.locator('[data-testid=sync]').innerText()).toMatch(/1 change to send/)
    expect((await stock.get('s1-bread'))?.qty).toBe(bread + 1)
    await a.screenshot({ path: join(SHOTS, 'stock-board-offline.png') })
    await a.locator('[data-testid=online]').check()
    await eventually('A back online: +2 +1 everywhere', async () => (await qty(a, 's1-bread')) === bread + 3 && (await qty(b, 's1-bread')) === bread + 3 && (await stock.get('s1-bread'))?.qty === bread + 3)
    await eventually('A in sync again', async () => (await a.locator('[data-testid=sync]').innerText()).includes('in sync'), 60_000)
  })
})
