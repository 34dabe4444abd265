import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { peerDiscoverySymbol, type Libp2p, type PeerDiscovery, type PeerDiscoveryEvents, type PeerId } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import { decode, encode } from 'cborg'
import { afterAll, describe, expect, it } from 'vitest'
import { DISCOVERY_TOPIC, MAX_ANNOUNCED_ADDRS, MAX_UNMET_REDIALS } from '../../src/net/constants.js'
import { loadOrCreatePeerKey } from '../../src/net/identity.js'
import { decodeAnnouncement, encodeAnnouncement } from '../../src/net/mesh-discovery.js'
import { DiscoveryReports, MeshKeeper } from '../../src/net/mesh-keeper.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { configureLibp2p, shoalServices, startShoalNode } from '../../src/net/shoal-node.js'

const dirs: string[] = []
const nodes: ShoalNode[] = []
const stops: Array<() => Promise<void>> = []
afterAll(async () => {
  await Promise.allSettled(stops.map((stop) => stop()))
  await Promise.allSettled(nodes.map((n) => n.stop()))
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

async function start(bootstrap: string[] = [], discoveryIntervalMs = 200, maxPeers = 256): Promise<ShoalNode> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-disc-'))
  dirs.push(dir)
  const node = await createNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, discoveryIntervalMs, redial: { minDelayMs: 50, maxDelayMs: 200, maxPeers } })
  nodes.push(node)
  return node
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** A discovery service the test makes report peers, as mDNS or an announcement would. */
class TestDiscovery extends TypedEventEmitter<PeerDiscoveryEvents> {
  readonly [peerDiscoverySymbol] = this
  readonly [Symbol.toStringTag] = 'test-discovery'
  report(id: PeerId, addr: Multiaddr): void {
    this.safeDispatchEvent('peer', { detail: { id, multiaddrs: [addr] } })
  }
}

/** A libp2p node whose one discovery service the test drives, and its keeper (first redial after ~50 ms, then doubling up to `maxDelayMs`). */
async function keptNode(maxDelayMs: number): Promise<{ a: Libp2p; keeper: MeshKeeper; discovery: TestDiscovery }> {
  const discovery = new TestDiscovery()
  const reports = new DiscoveryReports()
  const node = await configureLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], peerDiscovery: [reports.tap(() => discovery as unknown as PeerDiscovery)], services: shoalServices(true) })
  const a = node as unknown as Libp2p
  const keeper = new MeshKeeper(a, { minDelayMs: 50, maxDelayMs, forgetAfterMs: 3_600_000, maxPeers: 256 }, undefined, Math.random, reports)
  await startShoalNode(node, keeper, [], 'test')
  stops.push(async () => {
    await keeper.stop()
    await node.stop()
  })
  return { a, keeper, discovery }
}

const somePeer = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

/** An announcement's fields as given, for forgeries: [version, 'peer', addrs, peer, signature]. */
const raw = (addrs: Uint8Array[], peer: string, signature: Uint8Array, version = 2) => encode([version, 'peer', addrs, peer, signature])

describe('peer announcements', () => {
  it('round-trip the signer’s own addresses, relayed ones included', async () => {
    const key = await generateKeyPair('Ed25519')
    const me = peerIdFromPrivateKey(key)
    const relay = await somePeer()
    const addrs = [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${me}`), multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${relay}/p2p-circuit/p2p/${me}`)]
    const decoded = await decodeAnnouncement(await encodeAnnouncement(addrs, key))
    expect(decoded?.peer.toString()).toBe(me.toString())
    expect(decoded?.addrs.map(String)).toEqual(addrs.map(String))
  })

  it('are refused when they name another peer, are signed by another, hold too many or malformed addresses', async () => {
    const key = await generateKeyPair('Ed25519')
    const me = peerIdFromPrivateKey(key)
    const other = await somePeer()
    expect(await decodeAnnouncement(await encodeAnnouncement([multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${other}`)], key))).toBeNull()
    // A valid announcement of mine, claimed for another peer, or with an address swapped in.
    const mine = decode(await encodeAnnouncement([multiaddr('/ip4/127.0.0.1/tcp/1')], key)) as [number, string, Uint8Array[], string, Uint8Array]
    expect(await decodeAnnouncement(raw(mine[2], other.toString(), mine[4]))).toBeNull()
    expect(await decodeAnnouncement(raw([multiaddr('/ip4/127.0.0.1/tcp/2').bytes], me.toString(), mine[4]))).toBeNull()
    expect(await decodeAnnouncement(raw(mine[2], me.toString(), mine[4]))).not.toBeNull()
    expect(await decodeAnnouncement(raw(mine[2], me.toString(), new Uint8Array(64)))).toBeNull()
    const many = Array.from({ length: MAX_ANNOUNCED_ADDRS + 1 }, (_, i) => multiaddr(`/ip4/127.0.0.1/tcp/${1000 + i}`))
    expect(await decodeAnnouncement(raw(many.map((a) => a.bytes), me.toString(), mine[4]))).toBeNull()
    // Only MAX_ANNOUNCED_ADDRS are ever sent.
    expect((await decodeAnnouncement(await encodeAnnouncement(many, key)))?.addrs).toHaveLength(MAX_ANNOUNCED_ADDRS)
    expect(await decodeAnnouncement(raw([new Uint8Array([0xff, 0xff, 0xff])], me.toString(), mine[4]))).toBeNull()
    expect(await decodeAnnouncement(raw(mine[2], me.toString(), mine[4], 1))).toBeNull()
    expect(await decodeAnnouncement(raw(mine[2], 'not a peer id', mine[4]))).toBeNull()
    expect(await decodeAnnouncement(new Uint8Array([1, 2, 3]))).toBeNull()
  })
})

describe('discovery between real peers', () => {
  it('introduces peers two hops away; a forged announcement makes nobody dial elsewhere', async () => {
    const a = await start()
    const aAddr = a.multiaddrs().map(String)
    const b = await start(aAddr)
    const c = await start(aAddr)
    await waitFor('B and C to find each other through A', () => b.connectedPeers().some((p) => p.equals(c.peerId)))

    // A hostile member announces a victim's id with an address of its choosing: gossipsub delivers
    // it (the message is validly signed, by the hostile peer), and it is ignored because the
    // announcement is not signed by the peer it names.
    const hostile = await start(aAddr, 60_000)
    const hostileKey = await loadOrCreatePeerKey(dirs[dirs.length - 1]!)
    await waitFor('the hostile peer to join', () => a.connectedPeers().some((p) => p.equals(hostile.peerId)))
    const victim = await somePeer()
    const dialled: string[] = []
    b.libp2p.addEventListener('peer:discovery', (event) => dialled.push(event.detail.id.toString()))
    const forged = raw([multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${victim}`).bytes], victim.toString(), new Uint8Array(64))
    await waitFor('the hostile peer to see subscribers', () => hostile.pubsub.getSubscribers(DISCOVERY_TOPIC).length > 0)
    await hostile.pubsub.publish(DISCOVERY_TOPIC, forged)
    await hostile.pubsub.publish(DISCOVERY_TOPIC, await encodeAnnouncement([multiaddr('/ip4/127.0.0.1/tcp/9')], hostileKey))
    // the hostile peer's own (bogus, unreachable) address is taken, as its own
    await waitFor('the honest announcement to be seen', () => dialled.includes(hostile.peerId.toString()))
    expect(dialled).not.toContain(victim.toString())
    expect(b.knownPeers().map(String)).not.toContain(victim.toString())
  })

  it('forgets a peer it heard of but never reached after a few tries', async () => {
    const a = await start()
    const ghost = await somePeer()
    // discovery of a peer whose address answers nothing
    a.libp2p.safeDispatchEvent('peer:discovery', { detail: { id: ghost, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1')] } })
    await waitFor('the ghost to be tried', () => a.knownPeers().some((p) => p.equals(ghost)), 5_000)
    await waitFor(`the ghost to be forgotten after ${MAX_UNMET_REDIALS} tries`, () => !a.knownPeers().some((p) => p.equals(ghost)), 20_000)
  })

  it('dials a peer it had forgotten as never reached once a discovery reports it again', async () => {
    // B, first up alone: its id and address are what A hears of while B is down.
    const bDir = await mkdtemp(join(tmpdir(), 'shoal-disc-'))
    dirs.push(bDir)
    const first = await createNode({ dataDir: bDir, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
    const bAddr = first.multiaddrs()[0]!
    const bId = first.peerId
    await first.stop()

    const { a, keeper, discovery } = await keptNode(200)
    discovery.report(bId, bAddr)
    await waitFor('B to be tried', () => keeper.knownPeers().some((p) => p.equals(bId)), 5_000)
    await waitFor(`B to be forgotten after ${MAX_UNMET_REDIALS} tries`, () => !keeper.knownPeers().some((p) => p.equals(bId)), 20_000)

    // B comes up again, knowing nothing of A. B is in A's peer store already, so libp2p emits no
    // 'peer:discovery' when it is reported again: the report alone must bring A's keeper back to it.
    const b = await createNode({ dataDir: bDir, listen: [bAddr.toString()], mdns: false })
    nodes.push(b)
    // Reported again and again, as announcements and mDNS answers come: past the redial ceiling
    // (200 ms here) one of them brings A back to B.
    await waitFor('A to dial B on a new report', () => {
      discovery.report(bId, bAddr)
      return a.getConnections(bId).length > 0
    }, 20_000)
    expect(a.getConnections(bId).map((c) => c.direction)).toEqual(['outbound'])
  })

  it('a peer forgotten as never reached is not dialled again on reports within the redial ceiling', async () => {
    // B's address: a port that takes each connection and drops it, counting the dials.
    let dials = 0
    const trap = createServer((socket) => {
      dials++
      socket.destroy()
    })
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
    stops.push(() => new Promise<void>((resolve) => trap.close(() => resolve())))
    const bId = await somePeer()
    const bAddr = multiaddr(`/ip4/127.0.0.1/tcp/${(trap.address() as AddressInfo).port}`)

    // Quick first tries, a ceiling far beyond this test.
    const { keeper, discovery } = await keptNode(600_000)
    discovery.report(bId, bAddr)
    await waitFor('B to be tried', () => keeper.knownPeers().some((p) => p.equals(bId)), 5_000)
    await waitFor(`B to be forgotten after ${MAX_UNMET_REDIALS} tries`, () => !keeper.knownPeers().some((p) => p.equals(bId)), 20_000)
    expect(dials).toBe(MAX_UNMET_REDIALS)
    // Reports take a peer back into the book at once; these are all turned away.
    for (let i = 0; i < 20; i++) discovery.report(bId, bAddr)
    expect(keeper.knownPeers().some((p) => p.equals(bId))).toBe(false)
  })

  it('keeps the peers it replicates with when announcements of unknown peers fill its book', async () => {
    const a = await start([], 200, 4)
    const b = await start(a.multiaddrs().map(String))
    const c = await start(a.multiaddrs().map(String))
    await waitFor('B and C to connect to A', () => a.connectedPeers().length === 2)
    // a crowd of peers heard of, at unreachable addresses (slow to fail: a filtered port would hang)
    for (let i = 0; i < 20; i++) {
      a.libp2p.safeDispatchEvent('peer:discovery', { detail: { id: await somePeer(), multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1')] } })
    }
    const known = a.knownPeers().map(String)
    expect(known.length).toBeLessThanOrEqual(4)
    expect(known).toContain(b.peerId.toString())
    expect(known).toContain(c.peerId.toString())
  })
})
