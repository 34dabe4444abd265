import { join } from 'node:path'
import { callbackLogger } from '../../src/log.js'
import { afterEach, describe, expect, it } from 'vitest'
import { Shoal } from '../../src/index.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { GossipReplicator, type GossipReplicatorInit } from '../../src/peer/gossip-replicator.js'
import { topicFor } from '../../src/sync/gossip.js'
import { tempDir } from '../helpers/tempdir.js'

interface Peer {
  db: Shoal
  node: ShoalNode
  replicator: GossipReplicator
  logs: string[]
}

const peers: Peer[] = []

async function startPeer(bootstrap: string[] = [], init: Partial<GossipReplicatorInit> = {}): Promise<Peer> {
  const dir = await tempDir()
  const db = await Shoal.open({ dir: join(dir, 'db') })
  const node = await createNode({ dataDir: join(dir, 'net'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false })
  const logs: string[] = []
  const replicator = new GossipReplicator(db.replication(), node, { carries: { stock: ['7'] }, logger: callbackLogger((level, m) => void (level !== 'debug' && logs.push(m))), ...init })
  replicator.start()
  const peer = { db, node, replicator, logs }
  peers.push(peer)
  return peer
}

afterEach(async () => {
  for (const p of peers.splice(0)) {
    await p.replicator.stop()
    await p.node.stop()
    await p.db.close()
  }
})

async function eventually(what: string, check: () => Promise<boolean> | boolean, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('gossip replication between real libp2p peers on 127.0.0.1', () => {
  it('spreads schema and concurrent writes to three peers, which converge with counters summed', async () => {
    const a = await startPeer()
    const addr = a.node.multiaddrs()[0]!.toString()
    const b = await startPeer([addr])
    const c = await startPeer([addr])
    const all = [a, b, c]
    const topics = [topicFor('_tables', ''), topicFor('stock', '7')]
    await eventually('every peer sees the others on both topics', () =>
      all.every((p) => topics.every((t) => p.node.pubsub.getSubscribers(t).length === 2)),
    )

    await a.db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', name: 'string', qty: 'counter' } })
    await eventually('b and c learn the table', () => [b, c].every((p) => p.db.tables().some((t) => t.name === 'stock')))

    await a.db.table('stock').put('X', { store: '7', name: 'from a', qty: 10 })
    await eventually('the row reaches b and c', async () => (await Promise.all([b, c].map((p) => p.db.table('stock').get('X')))).every((r) => r !== null))
    await Promise.all(
      all.flatMap((p, i) => [
        ...Array.from({ length: 5 }, () => p.db.table('stock').increment('X', 'qty', i + 1)),
        p.db.table('stock').update('X', { name: `from peer ${i}` }),
      ]),
    )
    // 10 + 5·1 + 5·2 + 5·3
    await eventually('all three rows equal with the counter summed', async () => {
      const rows = await Promise.all(all.map((p) => p.db.table('stock').get('X')))
      return rows.every((r) => r!.qty === 40 && r!.name === rows[0]!.name)
    })
    const digests = await Promise.all(all.map(async (p) => (await p.db.status()).tables[0]!.partitions))
    expect(digests[1]).toEqual(digests[0])
    expect(digests[2]).toEqual(digests[0])
    for (const p of all) expect(p.logs).toEqual([])
    expect(a.replicator.counters.deltasOut).toBeGreaterThan(0)
    expect(b.replicator.counters.deltasApplied).toBeGreaterThan(0)
  })

  it('refuses garbage from a peer, logs it, and keeps its store and digests unchanged', async () => {
    const a = await startPeer()
    const b = await startPeer([a.node.multiaddrs()[0]!.toString()])
    await a.db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', qty: 'counter' } })
    await b.db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', qty: 'counter' } })
    await b.db.table('stock').put('Y', { store: '7', qty: 1 })
    const topic = topicFor('stock', '7')
    await eventually('a sees b on the stock topic', () => a.node.pubsub.getSubscribers(topic).length === 1)
    const before = await b.db.status()
    const { encode } = await import('cborg')
    const garbage = [
      new Uint8Array([1, 2, 3]),
      encode([9, 'deltas', 'stock', '7', [['Y', new Uint8Array([1])]]]),
      encode([1, 'deltas', 'stock', '8', [['Y', new Uint8Array([1])]]]),
      encode([1, 'deltas', 'stock', '7', [['Y', new Uint8Array([255, 255, 255, 1])]]]),
    ]
    const { deflateRawSync } = await import('node:zlib')
    const { encodeDeflatedMessage } = await import('../../src/sync/gossip.js')
    const deflated = [
      encodeDeflatedMessage(new Uint8Array([0xff, 0xff, 0xff, 0xff])),
      encodeDeflatedMessage(deflateRawSync(new Uint8Array(600 * 1024))),
      encodeDeflatedMessage(deflateRawSync(encodeDeflatedMessage(deflateRawSync(garbage[3]!)))),
      encodeDeflatedMessage(deflateRawSync(garbage[3]!)),
    ]
    for (const g of [...garbage, ...deflated]) await a.node.pubsub.publish(topic, g)
    await eventually('b logged all eight refusals', () => b.logs.length >= 8)
    expect(b.logs.join('\n')).toMatch(/not valid CBOR[\s\S]*protocol version 9[\s\S]*came on[\s\S]*not a valid Yjs update/)
    expect(b.logs.slice(4).join('\n')).toMatch(/not valid deflate[\s\S]*inflates past the 524288-byte limit[\s\S]*neither row deltas nor a changeset[\s\S]*not a valid Yjs update/)
    expect(await b.db.status()).toEqual(before)
    expect(await b.db.table('stock').get('Y')).toEqual({ sku: 'Y', store: '7', qty: 1 })
  })

  it('deflates coalesced messages to peers that read deflated gossip, and sends plain ones where a subscriber does not', async () => {
    const a = await startPeer()
    const addr = a.node.multiaddrs()[0]!.toString()
    const b = await startPeer([addr])
    const topic = topicFor('stock', '7')
    const { gossipKind } = await import('../../src/sync/gossip.js')
    const kindsFromA = (node: ShoalNode): string[] => {
      const kinds: string[] = []
      node.pubsub.addEventListener('gossipsub:message', (event) => {
        const { msg, propagationSource } = event.detail
        if (msg.topic === topic && propagationSource.equals(a.node.peerId)) kinds.push(gossipKind(msg.data))
      })
      return kinds
    }
    const atB = kindsFromA(b.node)
    await eventually('a sees b on the stock topic', () => a.node.pubsub.getSubscribers(topic).length === 1)
    await a.db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', shelf: 'string', qty: 'counter' } })
    await eventually('b learns the table', () => b.db.tables().some((t) => t.name === 'stock'))
    const burst = async (from: number): Promise<void> => {
      await Promise.all(Array.from({ length: 200 }, (_, i) => a.db.table('stock').put(`K${from + i}`, { store: '7', shelf: `aisle ${(from + i) % 9}`, qty: 1 })))
    }
    const holds = (p: Peer, n: number) => async () => (await p.db.status()).tables.find((t) => t.name === 'stock')?.rows === n
    await burst(0)
    await eventually('b holds the first burst', holds(b, 200))
    expect(atB).toContain('deflated')

    // A subscriber that does not listen on the deflate topic (an older peer): a sends plain.
    const { createNode } = await import('../../src/net/node.js')
    const c = await createNode({ dataDir: join(await tempDir(), 'net'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [addr], mdns: false })
    try {
      const atC = kindsFromA(c)
      c.pubsub.subscribe(topic)
      await eventually('a sees c on the stock topic', () => a.node.pubsub.getSubscribers(topic).some((p) => p.equals(c.peerId)))
      atB.length = 0
      await burst(200)
      await eventually('b holds both bursts', holds(b, 400))
      await eventually('c heard a', () => atC.length > 0)
      expect(new Set(atC)).toEqual(new Set(['deltas']))
      expect(new Set(atB)).toEqual(new Set(['deltas']))
    } finally {
      await c.stop()
    }
    expect(b.logs).toEqual([])
  })

  it('counts a deflated message at its inflated size against the sender\'s byte rate', async () => {
    const a = await startPeer()
    const b = await startPeer([a.node.multiaddrs()[0]!.toString()], { bytesPerSecond: 16 * 1024 })
    await b.db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', columns: { sku: 'string', store: 'string', qty: 'counter' } })
    const topic = topicFor('stock', '7')
    await eventually('a sees b on the stock topic', () => a.node.pubsub.getSubscribers(topic).length === 1)
    const { deflateRawSync } = await import('node:zlib')
    const { encodeDeflatedMessage, encodeDeltaBatch } = await import('../../src/sync/gossip.js')
    // ~1 KB on the wire, 48 KB once inflated: within the burst (32 KB) as sent, over it inflated.
    const deltas = Array.from({ length: 48 }, (_, i) => ({ key: `K${i}`, delta: new Uint8Array(1000).fill(7) }))
    const message = encodeDeflatedMessage(deflateRawSync(encodeDeltaBatch({ table: 'stock', partition: '7', deltas })))
    expect(message.length).toBeLessThan(2048)
    await a.node.pubsub.publish(topic, message)
    await eventually('b refused it', () => b.logs.length >= 1)
    expect(b.logs[0]).toMatch(/over its byte rate once inflated/)
    expect(b.replicator.refusals.counts().RATE_LIMITED).toBe(1)
    expect(await b.db.table('stock').get('K0')).toBeNull()
  })

  it('takes deltas of a table not defined here yet without a warning, and asks the sender for a round', async () => {
    const a = await startPeer()
    const b = await startPeer([a.node.multiaddrs()[0]!.toString()])
    const learned: string[] = []
    b.replicator.onPartitionLearned = (table, partition, from) => learned.push(`${table}/${partition} from ${from}`)
    const topic = topicFor('stock', '7')
    await eventually('a sees b on the stock topic', () => a.node.pubsub.getSubscribers(topic).length === 1)
    const { encodeDeltaBatch } = await import('../../src/sync/gossip.js')
    await a.node.pubsub.publish(topic, encodeDeltaBatch({ table: 'stock', partition: '7', deltas: [{ key: 'Y', delta: new Uint8Array([1, 2, 3]) }] }))
    await eventually('b asked a for a round', () => learned.length === 1)
    expect(learned).toEqual([`stock/7 from ${a.node.peerId.toString()}`])
    expect(b.logs).toEqual([])
  })
})
