import { lpStream } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import type { ShoalNode } from '../../src/net/node.js'
import { decodeRequest, encodeResponse, MAX_FRAME_BYTES, SYNC_PROTOCOL } from '../../src/sync/sync-messages.js'
import { addressOf, bareNode, eventually, startPeer, type TestPeer } from '../helpers/peers.js'

/*
 * Anti-entropy on a slow or stalled link, with real peers on 127.0.0.1: deflated pages where both
 * sides allow them, timeouts that measure silence, and per-peer figures that count failed rounds.
 */

const STOCK = { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', shelf: 'string' } }

async function withRows(n: number): Promise<TestPeer> {
  const a = await startPeer({ tables: [STOCK] })
  const ops = Array.from({ length: n }, (_, i) => ({ table: 'stock', op: 'put' as const, key: `r${i}`, values: { store: String(i % 2), sku: `SKU-${i}`, shelf: `aisle ${i % 12}, shelf ${i % 5}` } }))
  for (let i = 0; i < n; i += 500) await a.peer.db.applyBatch(ops.slice(i, i + 500))
  return a
}

/** The unsigned varint libp2p's length-prefixed streams put before a frame. */
function lengthPrefix(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

async function connected(node: ShoalNode, p: TestPeer): Promise<void> {
  await node.dial(addressOf(p))
  await eventually('the peer sees the connection', () => p.peer.node.connectedPeers().some((id) => id.equals(node.peerId)))
}

const rowsOf = async (p: TestPeer): Promise<number> => (await p.peer.db.status()).tables.find((t) => t.name === 'stock')?.rows ?? 0

/** A libp2p node serving the sync protocol by hand: `serve` gets each request's frame and the raw stream. */
async function handRolledResponder(serve: (request: Uint8Array, stream: Parameters<Parameters<ShoalNode['libp2p']['handle']>[1]>[0]) => Promise<void>): Promise<ShoalNode> {
  const node = await bareNode()
  await node.libp2p.handle(SYNC_PROTOCOL, async (stream) => {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    try {
      for (;;) await serve((await lp.read()).subarray(), stream)
    } catch {
      // the initiator hung up
    }
  })
  return node
}

describe('anti-entropy over slow and stalled links', () => {
  it('deflates pages where both peers allow it, and sends plain frames (1.2.0-plain) to a peer that does not', async () => {
    // Two separate pairs, the same rows: a1 → b with both defaults, a2 → c where c turned deflate off.
    const a1 = await withRows(2000)
    const a2 = await withRows(2000)
    const b = await startPeer({ tables: [STOCK], bootstrap: [addressOf(a1)] })
    const c = await startPeer({ tables: [STOCK], bootstrap: [addressOf(a2)], sync: { deflate: false } })
    await eventually('b and c hold every row', async () => (await rowsOf(b)) === 2000 && (await rowsOf(c)) === 2000, 60_000)
    const from = (p: TestPeer, a: TestPeer) => p.peer.sync.status().peers.find((s) => s.peer === a.peer.node.peerId.toString())?.totals
    await eventually('both loads are recorded', () => (from(b, a1)?.rowsIn ?? 0) >= 2000 && (from(c, a2)?.rowsIn ?? 0) >= 2000)
    const [deflated, plain] = [from(b, a1)!, from(c, a2)!]
    // The rows and the catalog's row of the table.
    expect(deflated.rowsIn).toBe(2001)
    expect(plain.rowsIn).toBe(2001)
    expect(deflated.failedRounds + plain.failedRounds).toBe(0)
    // The same rows, less than half the bytes.
    expect(deflated.bytesIn).toBeLessThan(plain.bytesIn / 2)
    expect((await b.peer.db.check()).problems).toEqual([])
  })

  it('a peer that goes silent mid-round ends the round with PEER_SILENT; the failure is counted for that peer and logged with its reason', async () => {
    const silent = await handRolledResponder(async () => {
      // reads the request, never answers
    })
    const p = await startPeer({ tables: [STOCK], sync: { requestTimeoutMs: 500 } })
    // Connecting starts a round (the silent node speaks the sync protocol, by identify).
    await connected(silent, p)
    const withSilent = () => p.peer.sync.status().peers.find((s) => s.peer === silent.peerId.toString())
    await eventually('the round with the silent node has ended', () => withSilent() !== undefined)
    expect(withSilent()!.totals).toMatchObject({ rounds: 1, failedRounds: 1 })
    expect(withSilent()!.lastRound).toMatchObject({ ok: false, error: expect.stringContaining('no bytes from') })
    expect(p.peer.counters().syncRoundsFailed).toBe(1)
    expect(p.logger.messages('warn').some((m) => m.includes('failed: no bytes from'))).toBe(true)
  })

  it('a slow answer that keeps arriving is not a timeout, however long it takes in all', async () => {
    const answer = encodeResponse({ type: 'hello', carries: {}, roots: [], next: null })
    const framed = new Uint8Array([...lengthPrefix(answer.length), ...answer])
    const slow = await handRolledResponder(async (request, stream) => {
      expect(decodeRequest(request).type).toBe('hello')
      // Byte by byte, 150 ms apart: over a second in all, never 400 ms of silence.
      for (let i = 0; i < framed.length; i++) {
        stream.send(framed.subarray(i, i + 1))
        await new Promise((r) => setTimeout(r, 150))
      }
    })
    expect(framed.length).toBeGreaterThan(8)
    // A peer with no tables: the round is the hello alone.
    const p = await startPeer({ sync: { requestTimeoutMs: 400 } })
    const started = Date.now()
    await connected(slow, p)
    const withSlow = () => p.peer.sync.status().peers.find((s) => s.peer === slow.peerId.toString())
    await eventually('the round with the slow node has ended', () => withSlow() !== undefined)
    expect(withSlow()!.lastRound).toMatchObject({ ok: true })
    expect(withSlow()!.totals).toMatchObject({ rounds: 1, failedRounds: 0 })
    // It did take longer than the timeout: only silence ends a round.
    expect(Date.now() - started).toBeGreaterThan(400)
  })
})
