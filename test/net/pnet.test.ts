import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { NetStartError } from '../../src/net/errors.js'
import { createNode, type NetInit, type ShoalNode } from '../../src/net/node.js'
import { KeystreamXor } from '../../src/net/private-network.js'
import { formatSwarmKey, swarmKeySecret } from '../../src/trust/swarm-key.js'

// Loopback only, mDNS off.
const TCP = '/ip4/127.0.0.1/tcp/0'
const WS = '/ip4/127.0.0.1/tcp/0/ws'

const dirs: string[] = []
const nodes: ShoalNode[] = []
const others: Libp2p[] = []

async function start(init: Partial<NetInit> = {}): Promise<ShoalNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'shoal-pnet-'))
  dirs.push(dataDir)
  // No redial: a refused dial must stay refused, not be retried behind the test's back.
  const node = await createNode({ dataDir, listen: [TCP, WS], mdns: false, redial: { minDelayMs: 60_000, maxDelayMs: 60_000 }, ...init })
  nodes.push(node)
  return node
}

const secret = (): Uint8Array => formatSwarmKey(randomBytes(32))

function addr(node: ShoalNode, kind: 'tcp' | 'ws'): string {
  const all = node.multiaddrs().map(String)
  const found = all.find((a) => (kind === 'ws' ? a.includes('/ws/') : !a.includes('/ws')) && a.includes('/tcp/'))
  if (found === undefined) throw new Error(`no ${kind} address among ${all.join(', ')}`)
  return found
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The node knows nothing of `other` beyond, perhaps, the address it was told to dial: no connection, no protocols. */
async function learnedNothingOf(node: ShoalNode, other: ShoalNode): Promise<void> {
  expect(node.libp2p.getConnections(other.peerId)).toEqual([])
  const known = await node.libp2p.peerStore.get(other.peerId).catch(() => undefined)
  expect(known?.protocols ?? []).toEqual([])
}

afterAll(async () => {
  await Promise.allSettled([...nodes.map((n) => n.stop()), ...others.map((n) => n.stop())])
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

describe('the mesh secret (private network key)', () => {
  it('lets nodes holding the same key connect and speak over TCP; WebSockets are left to Noise and admission', async () => {
    const key = secret()
    const a = await start({ swarmKey: key })
    const b = await start({ swarmKey: key })
    expect(await b.ping(addr(a, 'tcp'))).toBeGreaterThanOrEqual(0)
    // identify ran over the protected connection: each learned the other's protocols
    await waitFor('identify between a and b', async () => ((await a.libp2p.peerStore.get(b.peerId).catch(() => undefined))?.protocols.length ?? 0) > 0)
    await waitFor('identify between b and a', async () => ((await b.libp2p.peerStore.get(a.peerId).catch(() => undefined))?.protocols.length ?? 0) > 0)
    // hanging up and connecting again works
    await b.libp2p.hangUp(a.peerId)
    await waitFor('the hang-up on both sides', () => a.libp2p.getConnections(b.peerId).length === 0)
    expect(await b.ping(addr(a, 'tcp'))).toBeGreaterThanOrEqual(0)
    // A WebSocket connection is not protected by the key (browsers join over it): any node can
    // open one, and the admission handshake (test/peer/private-mesh.test.ts) keeps strangers out.
    const noKey = await start()
    expect(await noKey.ping(addr(a, 'ws'))).toBeGreaterThanOrEqual(0)
    expect(await b.ping(addr(a, 'ws'))).toBeGreaterThanOrEqual(0)
  })

  it('refuses a node with another key or none, both ways: the dial fails and nothing is exchanged', async () => {
    const key = secret()
    const member = await start({ swarmKey: key })
    const otherKey = await start({ swarmKey: secret() })
    const noKey = await start()
    const seen = { member: 0 }
    member.libp2p.addEventListener('connection:open', () => seen.member++)

    for (const stranger of [otherKey, noKey]) {
      await expect(stranger.dial(addr(member, 'tcp'), { signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
      await expect(member.dial(addr(stranger, 'tcp'), { signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
      await learnedNothingOf(member, stranger)
      await learnedNothingOf(stranger, member)
    }
    expect(seen.member).toBe(0)
    expect(member.connectedPeers()).toEqual([])

    // the refused nodes still work among themselves: only the key keeps them apart
    const openNode = await start()
    expect(await openNode.ping(addr(noKey, 'tcp'))).toBeGreaterThanOrEqual(0)
    expect(await openNode.ping(addr(noKey, 'ws'))).toBeGreaterThanOrEqual(0)
  })

  it('speaks the libp2p private network protocol: a node using @libp2p/pnet with the same key connects, either way', async () => {
    const key = secret()
    const ours = await start({ swarmKey: key })
    const pnetNode = async (): Promise<Libp2p<{ ping: ReturnType<ReturnType<typeof ping>> }>> => {
      const node = await createLibp2p({
        addresses: { listen: [TCP] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionProtector: preSharedKey({ psk: key }),
        services: { ping: ping(), identify: identify() },
      })
      others.push(node)
      return node
    }
    const dialling = await pnetNode()
    expect(await dialling.services.ping.ping(ours.multiaddrs()[0]!, { signal: AbortSignal.timeout(10_000) })).toBeGreaterThanOrEqual(0)
    const dialled = await pnetNode()
    expect(await ours.ping(dialled.getMultiaddrs()[0]!.toString(), { signal: AbortSignal.timeout(10_000) })).toBeGreaterThanOrEqual(0)
  })

  it('carries large messages and keeps working after them (@libp2p/pnet\'s own cipher dies there)', async () => {
    const key = secret()
    const a = await start({ swarmKey: key })
    const b = await start({ swarmKey: key })
    await a.libp2p.handle('/shoal-test/echo/1', async (stream) => {
      for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain()
    })
    await b.dial(addr(a, 'tcp'))
    const stream = await b.libp2p.dialProtocol(a.peerId, '/shoal-test/echo/1')
    const replies = stream[Symbol.asyncIterator]()
    const echo = async (message: Uint8Array): Promise<Buffer> => {
      stream.send(message)
      const parts: Uint8Array[] = []
      let got = 0
      while (got < message.length) {
        const next = await replies.next()
        if (next.done === true) throw new Error('the stream ended')
        const part = next.value instanceof Uint8Array ? next.value : next.value.subarray()
        parts.push(part)
        got += part.length
      }
      return Buffer.concat(parts)
    }
    const big = new Uint8Array(randomBytes(4 * 1024 * 1024))
    expect((await echo(big)).equals(big)).toBe(true)
    for (let i = 0; i < 1500; i++) expect((await echo(new Uint8Array([i & 255, 1, 2]))).equals(new Uint8Array([i & 255, 1, 2]))).toBe(true)
  })

  it('XORs a stream in any chunking as one keystream (XSalsa20)', () => {
    const key = swarmKeySecret(secret(), 'test')
    const nonce = new Uint8Array(randomBytes(24))
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.array(fc.nat(300), { maxLength: 8 }), (data, cuts) => {
        const whole = new KeystreamXor(key, nonce).update(data)
        const chunked = new KeystreamXor(key, nonce)
        const parts: Uint8Array[] = []
        let at = 0
        for (const cut of [...cuts, data.length]) {
          const end = Math.min(data.length, at + cut)
          parts.push(chunked.update(data.subarray(at, end)))
          at = end
        }
        parts.push(chunked.update(data.subarray(at)))
        expect(Buffer.concat(parts)).toEqual(Buffer.from(whole))
        expect(Buffer.from(new KeystreamXor(key, nonce).update(whole))).toEqual(Buffer.from(data))
      }),
    )
  })

  it('refuses to start with a malformed key, saying so', async () => {
    await expect(start({ swarmKey: new TextEncoder().encode('/key/swarm/psk/1.0.0/\n/base16/\nabc\n') })).rejects.toThrow(NetStartError)
    await expect(start({ swarmKey: new TextEncoder().encode('not a key') })).rejects.toThrow(/mesh secret is not valid: .*does not start with \/key\/swarm\/psk\/1\.0\.0\//)
  })
})
