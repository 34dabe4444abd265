import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { encode } from 'cborg'
import { afterAll, describe, expect, it } from 'vitest'
import { DISCOVERY_TOPIC, MAX_ANNOUNCED_ADDRS, MAX_UNMET_REDIALS } from '../../src/net/constants.js'
import { decodeAnnouncement, encodeAnnouncement } from '../../src/net/mesh-discovery.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'

const dirs: string[] = []
const nodes: ShoalNode[] = []
afterAll(async () => {
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

const somePeer = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('peer announcements', () => {
  it('round-trip the sender’s own addresses, relayed ones included', async () => {
    const me = await somePeer()
    const relay = await somePeer()
    const addrs = [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${me}`), multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${relay}/p2p-circuit/p2p/${me}`)]
    expect(decodeAnnouncement(encodeAnnouncement(addrs), me)?.map(String)).toEqual(addrs.map(String))
  })

  it('are refused when they name another peer, hold too many or malformed addresses, or are not ours', async () => {
    const me = await somePeer()
    const other = await somePeer()
    expect(decodeAnnouncement(encodeAnnouncement([multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${other}`)]), me)).toBeNull()
    const many = Array.from({ length: MAX_ANNOUNCED_ADDRS + 1 }, (_, i) => multiaddr(`/ip4/127.0.0.1/tcp/${1000 + i}`).bytes)
    expect(decodeAnnouncement(encode([1, 'peer', many]), me)).toBeNull()
    expect(decodeAnnouncement(encode([1, 'peer', many.slice(0, MAX_ANNOUNCED_ADDRS)]), me)).toHaveLength(MAX_ANNOUNCED_ADDRS)
    expect(decodeAnnouncement(encode([1, 'peer', [new Uint8Array([0xff, 0xff, 0xff])]]), me)).toBeNull()
    expect(decodeAnnouncement(encode([2, 'peer', []]), me)).toBeNull()
    expect(decodeAnnouncement(new Uint8Array([1, 2, 3]), me)).toBeNull()
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
    // it (it is validly signed, by the hostile peer), and it is ignored because it is not about the sender.
    const hostile = await start(aAddr, 60_000)
    await waitFor('the hostile peer to join', () => a.connectedPeers().some((p) => p.equals(hostile.peerId)))
    const victim = await somePeer()
    const dialled: string[] = []
    b.libp2p.addEventListener('peer:discovery', (event) => dialled.push(event.detail.id.toString()))
    const forged = encode([1, 'peer', [multiaddr(`/ip4/127.0.0.1/tcp/9/p2p/${victim}`).bytes]])
    await waitFor('the hostile peer to see subscribers', () => hostile.pubsub.getSubscribers(DISCOVERY_TOPIC).length > 0)
    await hostile.pubsub.publish(DISCOVERY_TOPIC, forged)
    await hostile.pubsub.publish(DISCOVERY_TOPIC, encodeAnnouncement([multiaddr('/ip4/127.0.0.1/tcp/9')]))
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
