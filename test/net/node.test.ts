import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Message } from '@libp2p/gossipsub'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ShoalError } from '../../src/errors.js'
import { PEER_BOOK_FILE, PEER_KEY_FILE } from '../../src/net/constants.js'
import { NetStartError, PeerKeyError } from '../../src/net/errors.js'
import { loadOrCreatePeerKey } from '../../src/net/identity.js'
import { backoffDelay } from '../../src/net/mesh-keeper.js'
import { createNode, type NetInit, type ShoalNode } from '../../src/net/node.js'

// Loopback only: every node listens on 127.0.0.1 with OS-chosen ports, and mDNS stays off (it
// would multicast to the LAN).
const TCP = '/ip4/127.0.0.1/tcp/0'
const WS = '/ip4/127.0.0.1/tcp/0/ws'
const FAST = { discoveryIntervalMs: 300, redial: { minDelayMs: 100, maxDelayMs: 800 } } satisfies Partial<NetInit>

const dirs: string[] = []
const nodes: ShoalNode[] = []

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-net-'))
  dirs.push(dir)
  return dir
}

async function start(init: Omit<NetInit, 'mdns'>): Promise<ShoalNode> {
  const node = await createNode({ ...FAST, ...init, mdns: false })
  nodes.push(node)
  return node
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function connected(a: ShoalNode, b: ShoalNode): boolean {
  return a.libp2p.getConnections(b.peerId).some((c) => c.status === 'open')
}

/** Both sides see the connection open, and identify has told `a` where `b` listens. */
async function linked(a: ShoalNode, b: ShoalNode): Promise<boolean> {
  if (!connected(a, b) || !connected(b, a)) return false
  const peer = await a.libp2p.peerStore.get(b.peerId).catch(() => undefined)
  return (peer?.addresses.length ?? 0) > 0
}

function tcpAddrs(node: ShoalNode): string[] {
  return node.multiaddrs().map(String).filter((a) => a.includes('/tcp/') && !a.includes('/ws'))
}

function tcpPort(node: ShoalNode): number {
  const match = /\/tcp\/(\d+)\/p2p\//.exec(tcpAddrs(node)[0] ?? '')
  if (match === null) throw new Error(`no TCP address on ${node.peerId.toString()}`)
  return Number(match[1])
}

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()))
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

describe('persistent identity', () => {
  it('keeps the peer id across restarts, in a 0600 key file', async () => {
    const dataDir = await tempDir()
    const first = await start({ dataDir, listen: [TCP] })
    const id = first.peerId.toString()
    expect(first.peerId.type).toBe('Ed25519')
    await first.stop()

    const info = await stat(join(dataDir, PEER_KEY_FILE))
    expect(info.mode & 0o777).toBe(0o600)

    const second = await start({ dataDir, listen: [TCP] })
    expect(second.peerId.toString()).toBe(id)
    await second.stop()
  })

  it('refuses a corrupt key file with a typed error naming the file', async () => {
    const dataDir = await tempDir()
    const file = join(dataDir, PEER_KEY_FILE)
    await writeFile(file, 'this is not a protobuf private key', { mode: 0o600 })
    const failure = await createNode({ dataDir, listen: [TCP], mdns: false }).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(PeerKeyError)
    expect(failure).toBeInstanceOf(ShoalError)
    expect((failure as PeerKeyError).code).toBe('PEER_KEY_INVALID')
    expect((failure as Error).message).toContain(file)
    expect((failure as Error).message).toMatch(/delete it/)
    // the file is left as it was, for the operator to restore
    expect(await readFile(file, 'utf8')).toBe('this is not a protobuf private key')

    await writeFile(file, new Uint8Array(0))
    await expect(loadOrCreatePeerKey(dataDir)).rejects.toThrow(/is empty/)
  })

  it('creates one key under concurrent first starts and tightens a loose file mode', async () => {
    const dataDir = join(await tempDir(), 'nested', 'peer')
    const keys = await Promise.all([loadOrCreatePeerKey(dataDir), loadOrCreatePeerKey(dataDir), loadOrCreatePeerKey(dataDir)])
    expect(new Set(keys.map((k) => k.publicKey.toString())).size).toBe(1)

    const file = join(dataDir, PEER_KEY_FILE)
    await chmod(file, 0o644)
    const again = await loadOrCreatePeerKey(dataDir)
    expect(again.publicKey.toString()).toBe(keys[0]?.publicKey.toString())
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })
})

describe('redial backoff', () => {
  it('doubles from min to max with 50–100 % jitter', () => {
    expect(backoffDelay(0, 1000, 60_000, () => 1)).toBe(1000)
    expect(backoffDelay(0, 1000, 60_000, () => 0)).toBe(500)
    expect(backoffDelay(3, 1000, 60_000, () => 1)).toBe(8000)
    expect(backoffDelay(20, 1000, 60_000, () => 1)).toBe(60_000)
    expect(backoffDelay(1000, 1000, 60_000, () => 0)).toBe(30_000)
  })
})

describe('a three-peer mesh over TCP on 127.0.0.1', () => {
  let a: ShoalNode
  let b: ShoalNode
  let c: ShoalNode
  let bDir: string

  beforeAll(async () => {
    a = await start({ dataDir: await tempDir(), listen: [TCP] })
    bDir = await tempDir()
    b = await start({ dataDir: bDir, listen: [TCP], bootstrap: tcpAddrs(a) })
    c = await start({ dataDir: await tempDir(), listen: [TCP], bootstrap: tcpAddrs(a) })
  })

  it('connects everyone: B and C through A, and B–C through pubsub peer discovery', async () => {
    await waitFor('B and C to reach A', () => connected(a, b) && connected(a, c))
    // B and C were only given A's address: they learn of each other from the discovery topic
    await waitFor('B and C to find each other', () => connected(b, c) && connected(c, b))
    for (const n of [a, b, c]) expect(n.connectedPeers()).toHaveLength(2)
  })

  it('pings', async () => {
    const rtt = await b.ping(a.peerId)
    expect(rtt).toBeGreaterThanOrEqual(0)
    expect(rtt).toBeLessThan(5_000)
    expect(await c.ping(b.peerId)).toBeGreaterThanOrEqual(0)
  })

  it('delivers a gossipsub message, signed by its author', async () => {
    const topic = 'shoal-test/rows'
    const received: Message[] = []
    a.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic === topic) received.push(evt.detail)
    })
    a.pubsub.subscribe(topic)
    await waitFor('B to see A subscribed', () => b.pubsub.getSubscribers(topic).some((p) => p.equals(a.peerId)))

    const payload = new TextEncoder().encode('row delta 1')
    await b.pubsub.publish(topic, payload)
    await waitFor('A to receive the message', () => received.length > 0)

    const msg = received[0]
    expect(msg?.type).toBe('signed')
    if (msg?.type !== 'signed') throw new Error('unsigned message')
    expect(msg.from.equals(b.peerId)).toBe(true)
    expect(msg.signature.length).toBeGreaterThan(0)
    expect(new TextDecoder().decode(msg.data)).toBe('row delta 1')
    expect(a.pubsub.globalSignaturePolicy).toBe('StrictSign')
  })

  it('reconnects a restarted peer: same id, via bootstrap, via A redialling, via peers.json', async () => {
    const bId = b.peerId.toString()

    // 1. B restarts on a new port with its bootstrap list: same id, back in the mesh
    await b.stop()
    await waitFor('A to notice B left', () => !connected(a, b))
    b = await start({ dataDir: bDir, listen: [TCP], bootstrap: tcpAddrs(a) })
    expect(b.peerId.toString()).toBe(bId)
    await waitFor('B back with A and C', () => connected(a, b) && connected(c, b))

    // 2. B restarts on the same port with no bootstrap and no saved peers: only the others'
    //    redial loops can bring it back
    const port = tcpPort(b)
    await b.stop()
    await waitFor('A and C to notice B left', () => !connected(a, b) && !connected(c, b))
    await unlink(join(bDir, PEER_BOOK_FILE))
    b = await start({ dataDir: bDir, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    await waitFor('A and C to redial B', async () => (await linked(b, a)) && (await linked(b, c)))

    // 3. B restarts on a new port with no bootstrap: it redials the peers saved in peers.json
    await b.stop()
    const book = JSON.parse(await readFile(join(bDir, PEER_BOOK_FILE), 'utf8')) as { peers: Array<{ id: string }> }
    expect(book.peers.map((p) => p.id).sort()).toEqual([a.peerId.toString(), c.peerId.toString()].sort())
    await waitFor('A and C to notice B left', () => !connected(a, b) && !connected(c, b))
    b = await start({ dataDir: bDir, listen: [TCP] })
    await waitFor('B to redial A and C from peers.json', () => connected(b, a) && connected(b, c))
    expect(b.knownPeers().map(String).sort()).toEqual([a.peerId.toString(), c.peerId.toString()].sort())
  })
})

describe('WebSockets on 127.0.0.1', () => {
  it('connects two peers over /ws only', async () => {
    const d = await start({ dataDir: await tempDir(), listen: [WS] })
    const wsAddr = d.multiaddrs().map(String).find((a) => a.includes('/ws/'))
    expect(wsAddr).toBeDefined()
    const e = await start({ dataDir: await tempDir(), listen: [WS], bootstrap: [wsAddr as string] })
    await waitFor('E to connect to D over WebSockets', () => connected(e, d))
    const conn = e.libp2p.getConnections(d.peerId)[0]
    expect(conn?.remoteAddr.toString()).toContain('/ws')
    expect(conn?.encryption).toBe('/noise')
    expect(conn?.multiplexer).toBe('/yamux/1.0.0')
    expect(await e.ping(d.peerId)).toBeGreaterThanOrEqual(0)

    // a large message exercises the WebSocket data path both ways (framing, back-pressure)
    const topic = 'shoal-test/ws'
    const big = new Uint8Array(256 * 1024).map((_, i) => i % 251)
    let got: Uint8Array | undefined
    d.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic === topic) got = evt.detail.data
    })
    d.pubsub.subscribe(topic)
    await waitFor('E to see D subscribed', () => e.pubsub.getSubscribers(topic).some((p) => p.equals(d.peerId)))
    await e.pubsub.publish(topic, big)
    await waitFor('D to receive the large message', () => got !== undefined)
    expect(got).toEqual(big)
  })
})

describe('circuit relay v2 on 127.0.0.1', () => {
  it('lets a peer reserve a slot on a relay server and be reached through /p2p-circuit', async () => {
    const relay = await start({ dataDir: await tempDir(), listen: [TCP], relay: true })
    const hidden = await start({ dataDir: await tempDir(), listen: [TCP, '/p2p-circuit'], bootstrap: tcpAddrs(relay) })
    const isCircuit = (a: string): boolean => a.includes('/p2p-circuit/')
    await waitFor('a relay reservation', () => hidden.multiaddrs().map(String).some(isCircuit))
    const circuit = hidden.multiaddrs().map(String).find(isCircuit) as string
    expect(circuit).toContain(relay.peerId.toString())

    const outside = await start({ dataDir: await tempDir(), listen: [] })
    await outside.dial(circuit)
    const conn = outside.libp2p.getConnections(hidden.peerId).find((c) => isCircuit(c.remoteAddr.toString()))
    expect(conn).toBeDefined()
    expect(conn?.limits).toBeDefined() // relayed connections are limited (time/data) until DCUtR upgrades them
  })
})

describe('start errors', () => {
  it('reports a port in use as NetStartError', async () => {
    const first = await start({ dataDir: await tempDir(), listen: [TCP] })
    const failure = await createNode({ dataDir: await tempDir(), listen: [`/ip4/127.0.0.1/tcp/${tcpPort(first)}`], mdns: false }).catch(
      (e: unknown) => e,
    )
    expect(failure).toBeInstanceOf(NetStartError)
    expect((failure as NetStartError).code).toBe('NET_START_FAILED')
  })

  it('rejects malformed listen and bootstrap addresses before touching the network', async () => {
    const dataDir = await tempDir()
    await expect(createNode({ dataDir, listen: ['not-a-multiaddr'], mdns: false })).rejects.toThrow(NetStartError)
    await expect(createNode({ dataDir, listen: [TCP], bootstrap: ['/ip4/127.0.0.1/tcp/1'], mdns: false })).rejects.toThrow(/\/p2p\/<peer id>/)
  })
})
