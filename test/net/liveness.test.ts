import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, describe, expect, it } from 'vitest'
import { Liveness } from '../../src/net/liveness.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { eventually } from '../helpers/peers.js'

/*
 * The liveness service (net/liveness.ts) on real libp2p nodes over loopback TCP: it probes with
 * yamux's ping frame, not a ping stream (the ping protocol where the muxer has none), and closes a connection whose far end stops answering
 * (here: a relay between the two peers that stops forwarding without closing, as a dropped link
 * or a powered-off peer does).
 */

const dirs: string[] = []
const nodes: ShoalNode[] = []
const servers: Server[] = []
const cleanups: Array<() => void> = []
afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()))
  for (const clean of cleanups) clean()
  for (const s of servers) s.close()
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

async function start(): Promise<ShoalNode> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-live-'))
  dirs.push(dir)
  const node = await createNode({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, liveness: { intervalMs: 150, minTimeoutMs: 400 } })
  nodes.push(node)
  return node
}

/** A TCP relay to `port` on 127.0.0.1 that forwards until `freeze()`, then holds both sockets open and silent. */
async function relayTo(port: number): Promise<{ port: number; freeze: () => void }> {
  const sockets: Socket[] = []
  let frozen = false
  const server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1')
    inbound.on('data', (chunk) => frozen || outbound.write(chunk))
    outbound.on('data', (chunk) => frozen || inbound.write(chunk))
    // Once frozen, not even a close gets through: each side must find out by itself.
    const hangUp = (other: Socket) => () => frozen || other.destroy()
    inbound.on('error', hangUp(outbound))
    outbound.on('error', hangUp(inbound))
    inbound.on('close', hangUp(outbound))
    outbound.on('close', hangUp(inbound))
    sockets.push(inbound, outbound)
  })
  servers.push(server)
  cleanups.push(() => sockets.forEach((s) => s.destroy()))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, freeze: () => (frozen = true) }
}

const tcpPort = (node: ShoalNode): number => Number(node.multiaddrs().find((a) => a.toString().includes('/tcp/'))!.toString().split('/tcp/')[1]!.split('/')[0])

describe('liveness', () => {
  it("probes an idle connection with yamux's ping frame from both sides, and keeps it open", async () => {
    const a = await start()
    const b = await start()
    await a.dial(b.multiaddrs()[0]!)
    const la = a.libp2p.services.liveness
    const lb = b.libp2p.services.liveness
    await eventually('three probes each way', () => la.counts.muxerPings >= 3 && lb.counts.muxerPings >= 3)
    expect(la.counts.streamPings + lb.counts.streamPings).toBe(0)
    expect(la.counts.aborted + lb.counts.aborted).toBe(0)
    expect(a.libp2p.getConnections(b.peerId).length).toBe(1)
    expect(a.libp2p.getConnections(b.peerId)[0]!.rtt).toBeGreaterThanOrEqual(0)
  })

  it('probes a connection whose muxer cannot ping (WebRTC) with the ping protocol', async () => {
    const a = await start()
    const b = await start()
    await a.dial(b.multiaddrs()[0]!)
    const connection = a.libp2p.getConnections(b.peerId)[0]!
    // The same connection as a WebRTC one looks to the service: no muxer with a ping.
    const withoutMuxer = new Proxy(connection, {
      get(target, property) {
        if (property === 'muxer') return undefined
        const value: unknown = Reflect.get(target, property, target)
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
      },
      set: (target, property, value) => Reflect.set(target, property, value, target),
    })
    const live = new Liveness({ connectionManager: { getConnections: () => [withoutMuxer] }, logger: a.libp2p.logger }, { intervalMs: 100, minTimeoutMs: 2_000 })
    live.start()
    try {
      // A probe starts only once the one before has been answered (or has closed the connection).
      await eventually('three ping-protocol probes', () => live.counts.streamPings >= 3)
      expect(live.counts.muxerPings).toBe(0)
      expect(live.counts.aborted).toBe(0)
      expect(connection.status).toBe('open')
    } finally {
      live.stop()
    }
  })

  it('closes a connection whose far end has gone silent, on both sides', async () => {
    const a = await start()
    const b = await start()
    const relay = await relayTo(tcpPort(b))
    const closed: unknown[] = []
    a.libp2p.addEventListener('connection:close', (event) => closed.push(event.detail))
    await a.dial(multiaddr(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${b.peerId.toString()}`))
    await eventually('a first probe answered', () => a.libp2p.services.liveness.counts.muxerPings >= 2)
    expect(a.libp2p.getConnections(b.peerId).length).toBe(1)
    relay.freeze()
    await eventually('a to close its connection to b', () => a.libp2p.getConnections(b.peerId).length === 0)
    await eventually('b to close its connection to a', () => b.libp2p.getConnections(a.peerId).length === 0)
    expect(a.libp2p.services.liveness.counts.aborted).toBeGreaterThanOrEqual(1)
    expect(b.libp2p.services.liveness.counts.aborted).toBeGreaterThanOrEqual(1)
    expect(closed.length).toBeGreaterThanOrEqual(1)
  })
})
