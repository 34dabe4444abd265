import { copyFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { ForbiddenError, type TableSchema } from '../../src/index.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { encodeChangesetMessage, topicFor } from '../../src/sync/gossip.js'
import { decodeResponse, encodeRequest, MAX_FRAME_BYTES, SYNC_PROTOCOL } from '../../src/sync/sync-messages.js'
import { signChangeset } from '../../src/trust/changeset.js'
import { ADMIT_PROTOCOL, decodeHandshake, encodeHandshake, MAX_HANDSHAKE_BYTES } from '../../src/trust/handshake.js'
import { memberFolder, TEST_SWARM_KEY, testMesh, type TestMesh } from '../helpers/mesh.js'
import { addressOf, eventually, startPeer, stopPeer, type TestPeer } from '../helpers/peers.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * A private mesh with roles, real peers on 127.0.0.1 (docs/trust.md): only admitted peers are
 * served; every change is checked against its author's rights by every receiver, on gossip and on
 * anti-entropy; reads follow the rules; revocations spread without the authority.
 */

const TABLES: TableSchema[] = [
  { name: 'catalog', primaryKey: 'sku', columns: { sku: 'string', price: 'number' } },
  { name: 'sales', primaryKey: 'id', partitionBy: 'store', columns: { id: 'string', store: 'string', total: 'number' } },
]

async function member(mesh: TestMesh, group: string, partitions: string[], options: { bootstrap?: TestPeer[]; carries?: Record<string, string[]>; listen?: string[]; relay?: boolean } = {}): Promise<TestPeer & { id: string }> {
  const dir = await tempDir()
  const m = await memberFolder(mesh, dir, group, partitions)
  const p = await startPeer({
    dir,
    trust: m.material,
    tables: TABLES,
    ...(options.carries === undefined ? {} : { carries: options.carries }),
    ...(options.listen === undefined ? {} : { listen: options.listen }),
    ...(options.relay === undefined ? {} : { relay: options.relay }),
    bootstrap: (options.bootstrap ?? []).map(addressOf),
    sync: { intervalMs: 1_000 },
  })
  return { ...p, id: m.id }
}

/**
 * A bare node holding the same key as `dir`'s peer (a stolen or compromised member key), speaking
 * unsigned gossip as members do. `swarmKey` null: a node without the mesh secret.
 */
async function impostor(dir: string, swarmKey: Uint8Array | null = TEST_SWARM_KEY): Promise<ShoalNode> {
  const bare = join(await tempDir(), 'bare')
  await mkdir(bare, { recursive: true })
  await copyFile(join(dir, 'peer.key'), join(bare, 'peer.key'))
  return createNode({ dataDir: bare, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, ...(swarmKey === null ? {} : { swarmKey, signedGossip: false }) })
}

async function handshake(node: ShoalNode, to: TestPeer, admission: Uint8Array | null): Promise<boolean> {
  try {
    const stream = await node.libp2p.dialProtocol(to.peer.node.peerId, ADMIT_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: MAX_HANDSHAKE_BYTES })
    await lp.write(encodeHandshake({ admission, documents: [] }))
    const answer = decodeHandshake((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray())
    await stream.close()
    return answer.admission !== null
  } catch {
    return false
  }
}

describe('a private mesh with roles', () => {
  it("replicates within each member's rights: stores' sales reach HQ, HQ's catalog reaches stores, a store never receives another store's sales", async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    const s1 = await member(mesh, 'store', ['1'], { bootstrap: [hq], carries: { sales: ['1'] } })
    const s2 = await member(mesh, 'store', ['2'], { bootstrap: [hq], carries: { sales: ['2'] } })
    // Gossip in a private mesh carries no publisher signature (changesets carry their author's).
    const kinds = new Set<string>()
    hq.peer.node.pubsub.addEventListener('gossipsub:message', (event) => kinds.add(event.detail.msg.type))
    await eventually('stores learn the tables from HQ', async () => (await s1.peer.db.status()).tables.length === 2 && (await s2.peer.db.status()).tables.length === 2)
    await s1.peer.db.table('sales').put('a', { store: '1', total: 10 })
    await s2.peer.db.table('sales').put('b', { store: '2', total: 20 })
    await hq.peer.db.table('catalog').put('tea', { price: 3 })
    await eventually('HQ holds both sales', async () => (await hq.peer.db.table('sales').get('a')) !== null && (await hq.peer.db.table('sales').get('b')) !== null)
    await eventually('the catalog reaches both stores', async () => (await s1.peer.db.table('catalog').get('tea')) !== null && (await s2.peer.db.table('catalog').get('tea')) !== null)
    expect([...kinds]).toEqual(['unsigned'])
    // A store's own rights: it may not write the catalog or another store's partition.
    await expect(s1.peer.db.table('catalog').put('tea', { price: 0 })).rejects.toBeInstanceOf(ForbiddenError)
    await expect(s1.peer.db.table('sales').put('c', { store: '2', total: 1 })).rejects.toBeInstanceOf(ForbiddenError)
    // Give replication rounds time to run, then store 2 holds no sale of store 1.
    const rounds = s2.peer.sync.counters.rounds
    await eventually('store 2 ran more rounds', () => s2.peer.sync.counters.rounds >= rounds + 2)
    expect(await s2.peer.db.table('sales').get('a')).toBeNull()
    const status = await s1.peer.status()
    expect(status.mesh).toMatchObject({ mesh: mesh.id, group: 'store', partitions: ['1'] })
    expect(status.mesh!.rights.find((r) => r.table === 'catalog')).toEqual({ table: 'catalog', write: [], read: '*' })
  })

  it('a node without the mesh secret cannot connect at all over TCP, even with a valid admission', async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    const dir = await tempDir()
    await memberFolder(mesh, dir, 'hq', [])
    for (const key of [null, new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${'cd'.repeat(32)}\n`)]) {
      const node = await impostor(dir, key)
      try {
        await expect(node.dial(addressOf(hq), { signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
        expect(hq.peer.node.connectedPeers()).toEqual([])
      } finally {
        await node.stop()
      }
    }
  })

  it('over WebSockets (no mesh secret, how browsers join) admission alone keeps strangers out, and members in', async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [], { listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] })
    await hq.peer.db.table('catalog').put('secret-tea', { price: 3 })
    const ws = hq.peer.node.multiaddrs().map(String).find((a) => a.includes('/ws/'))!
    // A stranger (no secret, no admission) can open the connection, but hq says nothing of the
    // mesh to it: it never presents itself first, serves no sync, and hangs up when the
    // stranger does not present a valid admission in time.
    const silent = await createNode({ dataDir: join(await tempDir(), 'silent'), listen: [], mdns: false })
    const told: string[] = []
    await silent.libp2p.handle(ADMIT_PROTOCOL, (stream) => {
      told.push('hello')
      stream.abort(new Error('stranger'))
    })
    try {
      await silent.dial(ws)
      expect(silent.connectedPeers().map(String)).toEqual([hq.id])
      const sync = await silent.libp2p.dialProtocol(hq.peer.node.peerId, SYNC_PROTOCOL).catch(() => null)
      if (sync !== null) {
        const lp = lpStream(sync, { maxDataLength: MAX_FRAME_BYTES })
        await lp.write(encodeRequest({ type: 'hello', carries: {}, roots: [], next: null })).catch(() => undefined)
        const reply = (await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray()
        expect(decodeResponse(reply, 'hello')).toMatchObject({ type: 'error', code: 'NOT_ADMITTED' })
      }
      await eventually('hq hangs up on the silent stranger', () => silent.connectedPeers().length === 0, 20_000)
      expect(told).toEqual([])
      expect(hq.peer.refusals.counts().NOT_ADMITTED ?? 0).toBeGreaterThanOrEqual(1)
      // One presenting no admission is refused at once, and learns nothing either.
      await silent.dial(ws).catch(() => undefined)
      expect(await handshake(silent, hq, null)).toBe(false)
    } finally {
      await silent.stop()
    }
    // A member joins over WebSockets like over TCP, and replicates within its rights.
    const s1 = await member(mesh, 'store', ['1'], { carries: { sales: ['1'] } })
    await s1.peer.node.dial(ws)
    await eventually('the member over WebSockets gets its store', async () => (await s1.peer.db.status()).tables.length === 2 && (await s1.peer.db.table('catalog').get('secret-tea')) !== null)
    await s1.peer.db.table('sales').put('ws-sale', { store: '1', total: 5 })
    await eventually('its sale reaches hq', async () => (await hq.peer.db.table('sales').get('ws-sale')) !== null)
  })

  it('a relay in a private mesh serves members only: a stranger who reached it over WebSockets can neither reserve a slot nor be relayed to a member', async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [], { listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'], relay: true })
    // s2 has no address of its own: it is reachable only through hq's relay (as a browser tab is).
    const s2 = await member(mesh, 'store', ['2'], { listen: ['/p2p-circuit'], bootstrap: [hq], carries: { sales: ['2'] } })
    await eventually('s2 holds a slot on hq', () => s2.peer.node.multiaddrs().some((a) => a.toString().includes('/p2p-circuit')))
    const relayed = s2.peer.node.multiaddrs().map(String).find((a) => a.includes('/p2p-circuit'))!
    const ws = hq.peer.node.multiaddrs().map(String).find((a) => a.includes('/ws/'))!
    const throughWs = `${ws}/p2p-circuit/p2p/${s2.id}`
    expect(relayed).toContain(`/p2p/${hq.id}/p2p-circuit/p2p/${s2.id}`)

    // A stranger: no secret, no admission, connected to hq over WebSockets, asking for both.
    const stranger = await createNode({ dataDir: join(await tempDir(), 'stranger'), listen: ['/p2p-circuit'], mdns: false })
    try {
      await stranger.dial(ws)
      const relayedDial = await stranger.dial(throughWs, { signal: AbortSignal.timeout(20_000) }).then(
        () => 'connected',
        (error: Error) => error.message,
      )
      expect(relayedDial).not.toBe('connected')
      await eventually('hq refuses the stranger', () => (hq.peer.refusals.counts().NOT_ADMITTED ?? 0) >= 1, 20_000)
      expect(s2.peer.node.connectedPeers().map(String)).not.toContain(stranger.peerId.toString())
      expect(hq.peer.node.libp2p.services.relay!.reservations.has(stranger.peerId)).toBe(false)
      expect(stranger.multiaddrs().some((a) => a.toString().includes('/p2p-circuit'))).toBe(false)
    } finally {
      await stranger.stop()
    }

    // A member is relayed: s1 reaches s2 through hq, and its sale gets there.
    const s1 = await member(mesh, 'store', ['1'], { bootstrap: [hq], carries: { sales: ['1'] } })
    await s1.peer.node.dial(relayed)
    expect(s1.peer.node.connectedPeers().map(String)).toContain(s2.id)
  })

  it('refuses a node without an admission, with an expired one, and with one of another mesh: nothing is read or written', async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    await hq.peer.db.table('catalog').put('tea', { price: 3 })
    const other = await testMesh()
    const cases: Array<[string, (id: string) => Promise<Uint8Array | null>, string]> = [
      ['no admission', async () => null, 'NOT_ADMITTED'],
      ['an expired admission', (id) => mesh.admit(id, 'hq', [], { issuedAt: Date.now() - 3 * 86_400_000, expiresAt: Date.now() - 86_400_000 }), 'ADMISSION_EXPIRED'],
      ['an admission to another mesh', (id) => other.admit(id, 'hq', []), 'WRONG_MESH'],
    ]
    for (const [what, admission, reason] of cases) {
      const dir = await tempDir()
      const node = await impostor((await memberFolder(other, dir, 'hq', [])) && dir)
      try {
        await node.dial(addressOf(hq))
        expect(await handshake(node, hq, await admission(node.peerId.toString())), what).toBe(false)
        await eventually(`${what}: counted as ${reason}`, () => (hq.peer.refusals.counts()[reason] ?? 0) > 0)
        await eventually(`${what}: hung up on`, () => hq.peer.node.connectedPeers().every((p) => !p.equals(node.peerId)))
        // It may not even reconnect for a while (the gater), let alone sync.
        const stream = await node.libp2p.dialProtocol(hq.peer.node.peerId, SYNC_PROTOCOL).catch(() => null)
        if (stream !== null) {
          const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
          await lp.write(encodeRequest({ type: 'hello', carries: {}, roots: [], next: null }))
          const answer = decodeResponse((await lp.read()).subarray(), 'hello')
          expect(answer).toMatchObject({ type: 'error', code: 'NOT_ADMITTED' })
        }
      } finally {
        await node.stop()
      }
    }
    expect((await hq.peer.db.check()).problems).toEqual([])
  })

  it("refuses a compromised member's forbidden changes by gossip and by anti-entropy offer, and takes its allowed ones", async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    const s1dir = await tempDir()
    const s1 = await memberFolder(mesh, s1dir, 'store', ['1'])
    const node = await impostor(s1dir)
    try {
      await node.dial(addressOf(hq))
      expect(await handshake(node, hq, s1.admission)).toBe(true)
      const schema = hq.peer.db.replication()
      await eventually('HQ defined its tables', () => schema.schema('catalog') !== undefined)
      // Deltas made by a throwaway store acting as s1 (same actor), signed with s1's key.
      const { Shoal } = await import('../../src/index.js')
      const scratch = await Shoal.open({ dir: await tempDir(), actor: s1.id })
      for (const t of TABLES) await scratch.defineTable(t)
      const deltas: Record<string, Uint8Array> = {}
      scratch.replication().subscribe((e) => (deltas[`${e.table}/${e.key}`] = e.delta))
      await scratch.table('catalog').put('tea', { price: 0 })
      await scratch.table('sales').put('mine', { store: '1', total: 5 })
      await scratch.table('sales').put('theirs', { store: '2', total: 5 })
      await scratch.close()
      const sign = (table: string, partition: string, key: string, seq: number) =>
        signChangeset({ mesh: mesh.id, author: s1.id, table, partition, seq, rows: [{ key, delta: deltas[`${table}/${key}`]! }] }, s1.key)
      const forbiddenCatalog = await sign('catalog', '', 'tea', 1)
      const allowed = await sign('sales', '1', 'mine', 1)
      const forbiddenSale = await sign('sales', '2', 'theirs', 1)
      // By gossip.
      node.pubsub.subscribe(topicFor('catalog', ''))
      await eventually('HQ sees the subscription', () => hq.peer.node.pubsub.getSubscribers(topicFor('catalog', '')).some((p) => p.equals(node.peerId)))
      await node.pubsub.publish(topicFor('catalog', ''), encodeChangesetMessage(forbiddenCatalog.bytes))
      await eventually('the catalog change refused', () => (hq.peer.refusals.counts()['FORBIDDEN'] ?? 0) >= 1)
      // By anti-entropy offer.
      const stream = await node.libp2p.dialProtocol(hq.peer.node.peerId, SYNC_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      await lp.write(encodeRequest({ type: 'offer', table: 'sales', partition: '2', changesets: [forbiddenSale.bytes], admission: null }))
      expect(decodeResponse((await lp.read()).subarray(), 'offer')).toMatchObject({ type: 'offer', applied: 0, refused: 1 })
      await lp.write(encodeRequest({ type: 'offer', table: 'sales', partition: '1', changesets: [allowed.bytes], admission: null }))
      expect(decodeResponse((await lp.read()).subarray(), 'offer')).toMatchObject({ type: 'offer', applied: 1, refused: 0 })
      await stream.close()
      expect(await hq.peer.db.table('catalog').get('tea')).toBeNull()
      expect(await hq.peer.db.table('sales').get('theirs')).toBeNull()
      expect(await hq.peer.db.table('sales').get('mine')).toMatchObject({ total: 5 })
      expect((await hq.peer.db.check()).problems).toEqual([])
    } finally {
      await node.stop()
    }
  })

  it('refuses to start a member on a data folder an open-mesh peer wrote, saying what to do', async () => {
    const mesh = await testMesh()
    const dir = await tempDir()
    const open = await startPeer({ dir, tables: TABLES })
    await open.peer.db.table('catalog').put('tea', { price: 3 })
    await stopPeer(open)
    const m = await memberFolder(mesh, dir, 'hq', [])
    await expect(startPeer({ dir, trust: m.material, tables: TABLES })).rejects.toThrow(/written by a peer outside the private mesh.*new data folder/)
  })

  it('spreads a revocation without the authority: a peer that learns it from another hangs up on the revoked member', async () => {
    const mesh = await testMesh()
    const hq = await member(mesh, 'hq', [])
    const s1 = await member(mesh, 'store', ['1'], { bootstrap: [hq] })
    const s2 = await member(mesh, 'store', ['2'], { bootstrap: [hq] })
    await eventually('everyone connected to HQ', () => hq.peer.node.connectedPeers().length >= 2)
    // The operator hands HQ the revocation of store 1 (the authority is offline from here on).
    await hq.peer.trust!.membership.add(await mesh.revoke(s1.id))
    await eventually('HQ hangs up on store 1', () => hq.peer.node.connectedPeers().every((p) => p.toString() !== s1.id))
    await eventually('store 2 learns the revocation from HQ', () => s2.peer.trust!.membership.member(s1.id) === null && s2.peer.trust!.membership.summary().revocations === 1)
    await (async () => s1.peer.db.table('sales').put('late', { store: '1', total: 1 }))().catch(() => undefined)
    // Store 1 cannot come back: HQ's gater refuses it.
    await s1.peer.node.dial(addressOf(hq)).catch(() => undefined)
    expect(hq.peer.node.connectedPeers().some((p) => p.toString() === s1.id)).toBe(false)
    expect(await hq.peer.db.table('sales').get('late')).toBeNull()
  })
})
