import type { Page } from 'playwright-core'
import { describe, expect, it, onTestFailed } from 'vitest'
import { encodeJoinCode } from '../../src/trust/join-code.js'
import { browserAvailable, startBrowser, webrtcPaths, type BrowserHarness, STOCK } from '../helpers/browser.js'
import { memberFolder, testMesh } from '../helpers/mesh.js'
import { eventually, startPeer, stopPeer, type TestPeer } from '../helpers/peers.js'
import { tempDir } from '../helpers/tempdir.js'
import { startTurn, turnAvailable, type Turn } from '../helpers/turn.js'

/*
 * Tabs talk to each other over WebRTC, having met through a circuit relay (a Node peer with
 * `relay: true`): the relay carries the offer and answer, then the tabs' data channels carry
 * gossip and anti-entropy. On 127.0.0.1 only: the tabs' candidates are allocations on a TURN
 * server there (helpers/turn.ts), as devices on different networks would use one.
 */


/** libp2p's loggers in the tabs: what a failing run prints (harness.consoleOf). */
const DEBUG = 'libp2p:webrtc*,libp2p:circuit-relay*,libp2p:connection-manager*,-libp2p:connection-manager:connection-pruner*,-*:muxer*,*shoal:net*'

/**
 * The stage a test has reached, and on failure (a timeout included) what each tab saw: its
 * connections and its last log lines. A WebRTC stall in CI then says where it stalled.
 */
function stages(harness: BrowserHarness, pages: () => Page[]): (name: string) => void {
  let stage = 'setup'
  const began = Date.now()
  onTestFailed(async () => {
    console.error(`failed at stage '${stage}' (${((Date.now() - began) / 1000).toFixed(1)} s into the test)`)
    for (const [i, page] of pages().entries()) {
      const seen = await Promise.race([connections(page).then((c) => JSON.stringify(c)), new Promise<string>((r) => setTimeout(() => r('(no answer in 5 s)'), 5_000))]).catch((e: Error) => `(${e.message})`)
      console.error(`tab ${i} connections: ${seen}\n${harness.consoleOf(page).join('\n')}`)
    }
  })
  return (name) => {
    stage = name
  }
}

type Win = Window & { shoal: typeof import('../../src/browser.js'); peer: import('../../src/browser.js').BrowserPeer }

async function relayPeer(): Promise<{ relay: TestPeer; ws: string }> {
  const relay = await startPeer({ tables: [STOCK], listen: ['/ip4/127.0.0.1/tcp/0/ws'], relay: true })
  const ws = relay.peer.node
    .multiaddrs()
    .map(String)
    .find((a) => a.includes('/ws/'))
  if (ws === undefined) throw new Error('the relay has no WebSocket address')
  return { relay, ws }
}

async function startTab(page: Page, bootstrap: string, turn: Turn, mesh?: string): Promise<string> {
  return page.evaluate(
    async ({ bootstrap, table, webrtc, mesh }) => {
      const w = window as unknown as Win
      w.peer = await w.shoal.BrowserPeer.start({
        bootstrap: [bootstrap],
        tables: [table as never],
        sync: { intervalMs: 500, connectDelayMs: 100 },
        discoveryIntervalMs: 2_000,
        webrtc,
        ...(mesh === undefined ? {} : { mesh }),
      })
      return w.peer.peerId
    },
    { bootstrap, table: STOCK, webrtc: turn.webrtc, mesh },
  )
}

async function directlyConnected(a: Page, idA: string, b: Page, idB: string): Promise<boolean> {
  return (await connections(a)).some((c) => c.peer === idB && c.addr.includes('/webrtc')) && (await connections(b)).some((c) => c.peer === idA && c.addr.includes('/webrtc'))
}

/** The tab's open connections: peer and address. */
async function connections(page: Page): Promise<Array<{ peer: string; addr: string }>> {
  return page.evaluate(() => {
    const w = window as unknown as Win
    return w.peer.node.libp2p.getConnections().map((c) => ({ peer: c.remotePeer.toString(), addr: c.remoteAddr.toString() }))
  })
}

async function tabRow(page: Page, key: string): Promise<Record<string, unknown> | null> {
  return page.evaluate(async (key) => {
    const w = window as unknown as Win
    if (!w.peer.db.tables().some((t) => t.name === 'stock')) return null
    return (await w.peer.db.table('stock').get(key)) as Record<string, unknown> | null
  }, key)
}

describe.skipIf(!browserAvailable() || !turnAvailable())('WebRTC between tabs (Chromium)', () => {
  let harness: BrowserHarness
  let turn: Turn

  it('two tabs meet through a relay, connect over WebRTC, and keep replicating when the relay is gone', async () => {
    let pages: Page[] = []
    const stage = stages((harness ??= await startBrowser()), () => pages)
    turn ??= await startTurn()
    const { relay, ws } = await relayPeer()
    stage('tabs starting')
    const [a, b] = [await harness.openPage(undefined, { debug: DEBUG }), await harness.openPage(undefined, { debug: DEBUG })]
    pages = [a, b]
    const [idA, idB] = await Promise.all([startTab(a, ws, turn), startTab(b, ws, turn)])
    stage('connecting')
    await eventually('a direct WebRTC connection between the tabs', () => directlyConnected(a, idA, b, idB), 45_000)
    stage('first row')
    await a.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').put('s1-apple', { store: 's1', sku: 'apple', qty: 4 })
    })
    await eventually('the row in tab B', async () => (await tabRow(b, 's1-apple'))?.qty === 4)

    const relayId = relay.peer.node.peerId.toString()
    stage('stopping the relay')
    await stopPeer(relay)
    stage('relay stopped')
    await eventually('the relay gone from both tabs', async () => !(await connections(a)).some((c) => c.peer === relayId) && !(await connections(b)).some((c) => c.peer === relayId))
    stage('tab to tab')
    await b.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').increment('s1-apple', 'qty', 3)
    })
    await eventually('B’s press in tab A, tab to tab', async () => (await tabRow(a, 's1-apple'))?.qty === 7)
    // One connection each way round (the tab with the greater id leaves the dialling to the
    // other), and its data goes 127.0.0.1 to 127.0.0.1.
    expect((await connections(a)).map((c) => c.peer)).toEqual([idB])
    expect((await connections(b)).map((c) => c.peer)).toEqual([idA])
    expect(await webrtcPaths(a)).toEqual(['127.0.0.1 → 127.0.0.1'])
    expect(await webrtcPaths(b)).toEqual(['127.0.0.1 → 127.0.0.1'])
  }, 150_000)
  it('in a private mesh: admitted tabs connect over WebRTC; a stranger is refused by the relay and never reaches them', async () => {
    let pages: Page[] = []
    const stage = stages((harness ??= await startBrowser()), () => pages)
    turn ??= await startTurn()
    const mesh = await testMesh()
    const dir = await tempDir()
    const folder = await memberFolder(mesh, dir, 'hq', [])
    const hq = await startPeer({ dir, trust: folder.material, tables: [STOCK], listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'], relay: true })
    const ws = hq.peer.node.multiaddrs().map(String).find((addr) => addr.includes('/ws/'))!
    const joinCode = async (page: Page): Promise<string> => {
      const id = await page.evaluate(() => (window as unknown as Win).shoal.BrowserPeer.peerId())
      return encodeJoinCode({ mesh: mesh.id, documents: [await mesh.admit(id, 'store', ['s1']), mesh.rules] })
    }
    stage('tabs starting')
    const [a, b] = [await harness.openPage(undefined, { debug: DEBUG }), await harness.openPage(undefined, { debug: DEBUG })]
    pages = [a, b]
    const [idA, idB] = await Promise.all([startTab(a, ws, turn, await joinCode(a)), startTab(b, ws, turn, await joinCode(b))])
    stage('connecting')
    await eventually('a direct WebRTC connection between the admitted tabs', () => directlyConnected(a, idA, b, idB), 45_000)
    stage('first row')
    await a.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').put('s1-pear', { store: 's1', sku: 'pear', qty: 2 })
    })
    await eventually('A’s row in tab B', async () => (await tabRow(b, 's1-pear'))?.qty === 2)

    // A stranger who learnt A's address (addresses are not secret) asks the relay to reach it.
    const webrtcAddr = await a.evaluate(() => (window as unknown as Win).peer.node.multiaddrs().map(String).find((addr) => addr.includes('/webrtc'))!)
    stage('stranger')
    const stranger = await harness.openPage()
    const refusedBefore = hq.peer.refusals.counts().NOT_ADMITTED ?? 0
    const dialled = await stranger.evaluate(
      async ({ ws, webrtcAddr, table, webrtc }) => {
        const w = window as unknown as Win
        w.peer = await w.shoal.BrowserPeer.start({ name: 'stranger', bootstrap: [ws], tables: [table as never], webrtc })
        await w.peer.db.table('stock').put('s1-forged', { store: 's1', sku: 'pear', qty: 1000 })
        try {
          await w.peer.node.dial(webrtcAddr, { signal: AbortSignal.timeout(30_000) })
          return 'connected'
        } catch (error) {
          return `refused: ${(error as Error).message}`
        }
      },
      { ws, webrtcAddr, table: STOCK, webrtc: turn.webrtc },
    )
    expect(dialled).toMatch(/^refused/)
    const strangerId = await stranger.evaluate(() => (window as unknown as Win).peer.peerId)
    await eventually('hq refuses the stranger', () => (hq.peer.refusals.counts().NOT_ADMITTED ?? 0) > refusedBefore)
    expect((await connections(a)).some((c) => c.peer === strangerId)).toBe(false)
    expect(await tabRow(a, 's1-forged')).toBeNull()
    expect(await hq.peer.db.table('stock').get('s1-forged')).toBeNull()

    // The members go on without hq: admitted to each other over WebRTC, signed changes and all.
    stage('without hq')
    await stopPeer(hq)
    await b.evaluate(async () => {
      const w = window as unknown as Win
      await w.peer.db.table('stock').increment('s1-pear', 'qty', 5)
    })
    await eventually('B’s press in tab A with hq gone', async () => (await tabRow(a, 's1-pear'))?.qty === 7)
    expect(await webrtcPaths(a)).toEqual(['127.0.0.1 → 127.0.0.1'])
  }, 150_000)
})
