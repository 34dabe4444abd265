import * as A from '@automerge/automerge'
import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { MAX_ROW_OPS } from '../../src/constants.js'
import type { ShoalNode } from '../../src/net/node.js'
import { REFUSAL_LINES_PER_WINDOW } from '../../src/peer/refusals.js'
import { encodeDeltaBatch, encodePartitionAnnouncement, PARTITIONS_TOPIC, topicFor } from '../../src/sync/gossip.js'
import { deflateRawSync } from 'node:zlib'
import { FLAG_DEFLATE, packFrame, unpackFrame } from '../../src/sync/frame-compression.js'
import { decodeResponse, encodeRequest, MAX_FRAME_BYTES, MAX_ROOTS_PER_FRAME, SYNC_PROTOCOL_DEFLATE, SYNC_VERSION, type SyncResponse } from '../../src/sync/sync-messages.js'
import { CATALOG_TABLE } from '../../src/table/catalog.js'
import { bareNode, eventually, exchange, startPeer, stopPeer, type StartOptions, type TestPeer } from '../helpers/peers.js'

/*
 * The attacks of issue 10, each from a bare libp2p node speaking Shoal's protocols by hand:
 * every one is refused, logged (at a bounded rate, escaped) and counted by reason; rows, digests
 * and check() stay as they were; and the peer still serves an honest round afterwards.
 */

const TABLES = [
  { name: 'stock', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter' } },
  { name: 'sales', primaryKey: 'id', partitionBy: 'store', engine: 'automerge', columns: { id: 'string', store: 'string', amount: 'number' } },
]

async function victim(options: Partial<StartOptions> = {}): Promise<{ v: TestPeer; attacker: ShoalNode; before: unknown }> {
  const v = await startPeer({ tables: TABLES, carries: { stock: ['1'], sales: ['1'] }, ...options })
  await v.peer.db.table('stock').put('keep', { store: '1', sku: 'A1', qty: 5 })
  await v.peer.db.table('sales').put('s1', { store: '1', amount: 10 })
  const attacker = await bareNode(v)
  return { v, attacker, before: await state(v) }
}

async function state(v: TestPeer): Promise<unknown> {
  return { status: await v.peer.db.status(), stock: await v.peer.db.table('stock').scan(), sales: await v.peer.db.table('sales').scan() }
}

function refused(v: TestPeer, reason: string): number {
  return v.peer.counters().refusedByReason[reason] ?? 0
}

async function unharmed(v: TestPeer, attacker: ShoalNode, before: unknown): Promise<void> {
  expect(await state(v)).toEqual(before)
  expect((await v.peer.db.check()).problems).toEqual([])
  const [reply] = await exchange(attacker, v, [encodeRequest({ type: 'hello', carries: {}, roots: [], next: null })])
  expect(decodeResponse(reply!, 'hello')).toMatchObject({ type: 'hello' })
}

/** A Yjs delta made by another client on top of the victim's row. */
async function yjsDelta(v: TestPeer, table: string, partition: string, key: string, edit: (doc: Y.Doc, client: number) => void): Promise<Uint8Array> {
  const doc = new Y.Doc()
  const [stored] = await v.peer.db.replication().encodedRows(table, partition, [key])
  if (stored !== null && stored !== undefined) Y.applyUpdate(doc, stored)
  doc.clientID = 777
  const before = Y.encodeStateVector(doc)
  doc.transact(() => edit(doc, doc.clientID))
  return Y.encodeStateAsUpdate(doc, before)
}

async function push(attacker: ShoalNode, v: TestPeer, table: string, partition: string, key: string, bytes: Uint8Array): Promise<SyncResponse> {
  const [reply] = await exchange(attacker, v, [encodeRequest({ type: 'push', table, partition, rows: [{ key, bytes }] })])
  return decodeResponse(reply!, 'push')
}

async function meshed(attacker: ShoalNode, v: TestPeer, topic: string): Promise<void> {
  attacker.pubsub.subscribe(topic)
  await eventually('the attacker meshed with the victim on ' + topic, () => attacker.pubsub.getSubscribers(topic).length === 1 && v.peer.node.pubsub.getSubscribers(topic).length === 1)
}

describe('hostile peers: rows that fail the checks', () => {
  it('gossip with a register of the wrong kind and a NaN counter is refused, VALUE_INVALID', async () => {
    const { v, attacker, before } = await victim()
    await meshed(attacker, v, topicFor('stock', '1'))
    const bad = await yjsDelta(v, 'stock', '1', 'keep', (doc, client) => {
      doc.getMap('r').set('1:sku', { not: 'a string' })
      doc.getMap('n').set(`1:qty:${client}`, NaN)
    })
    await attacker.pubsub.publish(topicFor('stock', '1'), encodeDeltaBatch({ table: 'stock', partition: '1', deltas: [{ key: 'keep', delta: bad }] }))
    await eventually('the refusal is counted', () => refused(v, 'VALUE_INVALID') === 1)
    expect(v.logger.messages('warn').some((m) => /keep.*refused.*sku.*expected a string/.test(m))).toBe(true)
    await unharmed(v, attacker, before)
    expect((await v.peer.db.table('stock').increment('keep', 'qty', 1)).qty).toBe(6)
  })

  it('a causal length of 1e300 pushed by anti-entropy is refused, and the owner can still write', async () => {
    const { v, attacker, before } = await victim()
    const bad = await yjsDelta(v, 'stock', '1', 'keep', (doc, client) => doc.getMap('l').set(String(client), 1e300))
    expect(await push(attacker, v, 'stock', '1', 'keep', bad)).toMatchObject({ type: 'push', applied: 0, refused: 1 })
    expect(refused(v, 'VALUE_INVALID')).toBe(1)
    await unharmed(v, attacker, before)
    expect(await v.peer.db.table('stock').put('keep', { sku: 'A2' })).toMatchObject({ sku: 'A2' })
  })

  it('a schema flip pushed through the catalog is refused, SCHEMA_CONFLICT, and the peer restarts with its config', async () => {
    const { v, attacker, before } = await victim()
    const flip = await yjsDelta(v, CATALOG_TABLE, '', 'stock', (doc) => doc.getMap('r').set('1:engine', 'automerge'))
    expect(await push(attacker, v, CATALOG_TABLE, '', 'stock', flip)).toMatchObject({ type: 'push', applied: 0, refused: 1 })
    expect(refused(v, 'SCHEMA_CONFLICT')).toBe(1)
    expect(v.logger.messages('warn').some((m) => /engine is 'yjs' and cannot change to 'automerge'/.test(m))).toBe(true)
    await unharmed(v, attacker, before)
    const dir = v.dir
    await stopPeer(v)
    const again = await startPeer({ dir, tables: TABLES, carries: { stock: ['1'], sales: ['1'] } })
    expect(again.peer.db.schema('stock').engine).toBe('yjs')
  })

  it('an Automerge row that would expand past MAX_ROW_OPS is refused before it is loaded, DELTA_INVALID', async () => {
    const { v, attacker, before } = await victim()
    let doc = A.change(A.init<Record<string, unknown>>(), (d) => {
      d.t = ''
    })
    doc = A.change(doc, (d) => A.splice(d, ['t'], 0, 0, 'z'.repeat(MAX_ROW_OPS + 1)))
    const bomb = A.save(doc)
    A.free(doc)
    expect(bomb.length).toBeLessThan(4096)
    const rss = process.memoryUsage().rss
    expect(await push(attacker, v, 'sales', '1', 's9', bomb)).toMatchObject({ type: 'push', applied: 0, refused: 1 })
    expect(refused(v, 'DELTA_INVALID')).toBe(1)
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024)
    await unharmed(v, attacker, before)
  })

  it('a copy of a row for another partition than its key lives in is refused, PARTITION_INVALID', async () => {
    const { v, attacker, before } = await victim({ carries: {} })
    const [row] = await v.peer.db.replication().encodedRows('stock', '1', ['keep'])
    expect(await push(attacker, v, 'stock', '2', 'keep', row!)).toMatchObject({ type: 'push', applied: 0, refused: 1 })
    expect(refused(v, 'PARTITION_INVALID')).toBe(1)
    await unharmed(v, attacker, before)
  })
})

describe('hostile peers: what a peer may make another create or hold', () => {
  it('on 1.1.0, a deflate bomb, bytes that are not deflate and an unknown flag end the session, PROTOCOL_INVALID; a deflated hello is answered deflated', async () => {
    const { v, attacker, before } = await victim()
    const bomb = new Uint8Array([FLAG_DEFLATE, ...deflateRawSync(new Uint8Array(64 * 1024 * 1024))])
    expect(bomb.length).toBeLessThan(MAX_FRAME_BYTES)
    for (const frame of [bomb, new Uint8Array([FLAG_DEFLATE, 0xff, 0xfe, 0xfd]), new Uint8Array([9, ...encodeRequest({ type: 'hello', carries: {}, roots: [], next: null })])]) {
      expect(await exchange(attacker, v, [frame], 1, SYNC_PROTOCOL_DEFLATE)).toEqual([])
    }
    await eventually('the three refusals are counted', () => refused(v, 'PROTOCOL_INVALID') >= 3)
    const [reply] = await exchange(attacker, v, [await packFrame(encodeRequest({ type: 'hello', carries: {}, roots: [], next: null }))], 1, SYNC_PROTOCOL_DEFLATE)
    expect(decodeResponse(await unpackFrame(reply!, MAX_FRAME_BYTES), 'hello')).toMatchObject({ type: 'hello' })
    await unharmed(v, attacker, before)
  })

  it('digest trees are not built for partitions that do not exist', async () => {
    const { v, attacker, before } = await victim()
    const buffers = process.memoryUsage().arrayBuffers
    const asks = Array.from({ length: 300 }, (_, i) => encodeRequest({ type: 'children', table: 'stock', partition: `ghost-${i}`, level: 0, nodes: [0] }))
    const replies = await exchange(attacker, v, asks, asks.length)
    expect(replies).toHaveLength(300)
    for (const reply of replies) {
      const answer = decodeResponse(reply, 'children')
      expect(answer.type === 'children' && answer.hashes.every((b) => b === 0)).toBe(true)
    }
    // 300 dense trees would be ~336 MB of array buffers.
    expect(process.memoryUsage().arrayBuffers - buffers).toBeLessThan(32 * 1024 * 1024)
    await unharmed(v, attacker, before)
  })

  it('a hello listing 5,000 partitions, 800 announcements and one with a bad row add no topic and no partition', async () => {
    const { v, attacker, before } = await victim({ carries: {} })
    const topics = v.peer.gossip.topics().length
    const roots = Array.from({ length: 5000 }, (_, i) => [TABLES[0]!.name, `fake-${i}`, new Uint8Array(16).fill(1), 1])
    // more roots than a frame may list is refused as a whole…
    const [tooMany] = await exchange(attacker, v, [encode([SYNC_VERSION, 'hello', {}, roots, null])])
    expect(tooMany).toBeUndefined()
    // …and a full page adds nothing either
    const [page] = await exchange(attacker, v, [encode([SYNC_VERSION, 'hello', {}, roots.slice(0, MAX_ROOTS_PER_FRAME), null])])
    expect(decodeResponse(page!, 'hello')).toMatchObject({ type: 'hello' })
    await meshed(attacker, v, PARTITIONS_TOPIC)
    for (let i = 0; i < 800; i++) await attacker.pubsub.publish(PARTITIONS_TOPIC, encodePartitionAnnouncement({ table: 'stock', partition: `fake-${i}`, first: null }))
    // an announcement whose row fails its checks creates nothing either
    await attacker.pubsub.publish(PARTITIONS_TOPIC, encodePartitionAnnouncement({ table: 'stock', partition: 'fake-row', first: { key: 'x', delta: new Uint8Array([1, 2, 3]) } }))
    await eventually('the announcements reach the victim', () => v.peer.gossip.counters.announcementsIn === 801)
    await eventually('the bad row is refused', () => refused(v, 'DELTA_INVALID') === 1)
    expect(v.peer.gossip.topics().length).toBe(topics)
    expect(v.peer.db.replication().partitions('stock').map((p) => p.partition)).toEqual(['1'])
    await unharmed(v, attacker, before)
  })
})

describe('hostile peers: rates and sessions', () => {
  it('a flood of bad gossip is counted in full but logged a few lines a reason, escaped', async () => {
    const { v, attacker, before } = await victim()
    await meshed(attacker, v, topicFor('stock', '1'))
    const flood = 60
    for (let i = 0; i < flood; i++) {
      await attacker.pubsub.publish(topicFor('stock', '1'), encodeDeltaBatch({ table: 'stock', partition: '1', deltas: [{ key: `k\u001b[31m${i}\u202e`, delta: new Uint8Array([1, 2, 3, i]) }] }))
    }
    await eventually('every delta refused', () => refused(v, 'DELTA_INVALID') === flood)
    const lines = v.logger.messages('warn').filter((m) => m.includes('refused'))
    expect(lines.length).toBeLessThanOrEqual(REFUSAL_LINES_PER_WINDOW)
    // eslint-disable-next-line no-control-regex
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/)
    expect(lines.some((l) => l.includes('\\u001b'))).toBe(true)
    await unharmed(v, attacker, before)
  })

  it('gossip past a peer’s rate is dropped and counted, RATE_LIMITED', async () => {
    const { v, attacker, before } = await victim({ gossip: { messagesPerSecond: 5 } })
    await meshed(attacker, v, topicFor('stock', '1'))
    for (let i = 0; i < 40; i++) await attacker.pubsub.publish(topicFor('stock', '1'), encodeDeltaBatch({ table: 'stock', partition: '1', deltas: [{ key: 'keep', delta: new Uint8Array([9, i]) }] }))
    await eventually('rate-limited messages counted', () => refused(v, 'RATE_LIMITED') >= 20)
    expect(refused(v, 'DELTA_INVALID')).toBeLessThanOrEqual(20)
    await unharmed(v, attacker, before)
  })

  it('sync requests past a peer’s rate end its session, RATE_LIMITED', async () => {
    const { v, attacker, before } = await victim({ sync: { requestsPerSecond: 5, requestBurst: 5 } })
    const hello = encodeRequest({ type: 'hello', carries: {}, roots: [], next: null })
    const replies = await exchange(attacker, v, Array.from({ length: 12 }, () => hello), 12)
    expect(replies.length).toBe(6)
    expect(decodeResponse(replies[5]!, 'hello')).toMatchObject({ type: 'error', code: 'RATE_LIMITED' })
    expect(refused(v, 'RATE_LIMITED')).toBe(1)
    await eventually('the bucket refills', async () => {
      const [reply] = await exchange(attacker, v, [hello])
      return reply !== undefined && decodeResponse(reply, 'hello').type === 'hello'
    })
    expect(await state(v)).toEqual(before)
  })

  it('one session per peer, and at most maxInboundSessions in all: the rest are told BUSY', async () => {
    const { v, attacker, before } = await victim({ sync: { maxInboundSessions: 2 } })
    const hello = encodeRequest({ type: 'hello', carries: {}, roots: [], next: null })
    // an attacker holds a session open (asked once, never closes)
    const held = await attacker.libp2p.dialProtocol(v.peer.node.peerId, '/shoal/sync/1.0.0')
    const { lpStream } = await import('@libp2p/utils')
    const lp = lpStream(held)
    await lp.write(hello)
    await lp.read()
    const [second] = await exchange(attacker, v, [hello])
    expect(decodeResponse(second!, 'hello')).toMatchObject({ type: 'error', code: 'BUSY' })
    const other = await bareNode(v)
    const [third] = await exchange(other, v, [hello])
    expect(decodeResponse(third!, 'hello')).toMatchObject({ type: 'hello' })
    // two sessions open (held + one more held by `other`), a third peer is turned away
    const otherHeld = await other.libp2p.dialProtocol(v.peer.node.peerId, '/shoal/sync/1.0.0')
    const lp2 = lpStream(otherHeld)
    await lp2.write(hello)
    await lp2.read()
    const late = await bareNode(v)
    const [turnedAway] = await exchange(late, v, [hello])
    expect(decodeResponse(turnedAway!, 'hello')).toMatchObject({ type: 'error', code: 'BUSY' })
    expect(refused(v, 'BUSY')).toBe(2)
    held.abort(new Error('done'))
    otherHeld.abort(new Error('done'))
    await eventually('a slot is free again', async () => {
      const [reply] = await exchange(late, v, [hello])
      return reply !== undefined && decodeResponse(reply, 'hello').type === 'hello'
    })
    expect(await state(v)).toEqual(before)
  })
})
