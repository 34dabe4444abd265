import { Socket } from 'node:net'
import { lpStream } from '@libp2p/utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { coalescingSends } from '../../src/net/coalescing-encrypter.js'
import { createNode, type ShoalNode } from '../../src/net/node.js'
import { tempDir } from '../helpers/tempdir.js'

const nodes: ShoalNode[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  for (const n of nodes.splice(0)) await n.stop()
})

async function node(): Promise<ShoalNode> {
  const n = await createNode({ dataDir: await tempDir(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  nodes.push(n)
  return n
}

describe('noise messages leave in one socket write each', () => {
  it('a connection carrying small messages never writes a lone 2-byte length prefix', async () => {
    const a = await node()
    const b = await node()
    await b.libp2p.handle('/test/echo/1.0.0', async (stream) => {
      const lp = lpStream(stream)
      for (let i = 0; i < 20; i++) await lp.write(await lp.read())
      await stream.close()
    })
    const writes: number[] = []
    const write = Socket.prototype.write
    vi.spyOn(Socket.prototype, 'write').mockImplementation(function (this: Socket, ...args: Parameters<Socket['write']>) {
      const chunk = args[0]
      if (chunk instanceof Uint8Array) writes.push(chunk.byteLength)
      return write.apply(this, args)
    })
    await a.dial(b.multiaddrs()[0]!)
    const stream = await a.libp2p.dialProtocol(b.peerId, '/test/echo/1.0.0')
    const lp = lpStream(stream)
    for (let i = 0; i < 20; i++) {
      await lp.write(new TextEncoder().encode(`message ${i}`))
      expect(new TextDecoder().decode((await lp.read()).subarray())).toBe(`message ${i}`)
    }
    await stream.close()
    // Handshake, multistream, yamux and 40 echoed messages: many writes, none of them a bare prefix.
    expect(writes.length).toBeGreaterThan(40)
    expect(writes.filter((n) => n === 2)).toEqual([])
  })

  it('joins the pieces of one send and leaves the rest of the connection as it is', () => {
    const sent: unknown[] = []
    const log = Object.assign(() => undefined, { newScope: () => log })
    const connection = {
      log,
      status: 'open',
      send(data: unknown): boolean {
        sent.push(data)
        return this.status === 'open'
      },
    }
    const view = coalescingSends(connection as never) as unknown as typeof connection
    const list = { bufs: [new Uint8Array([0, 3]), new Uint8Array([7, 8, 9])], subarray: () => new Uint8Array([0, 3, 7, 8, 9]) }
    expect(view.send(list)).toBe(true)
    const single = new Uint8Array([1])
    view.send(single)
    expect(sent).toEqual([new Uint8Array([0, 3, 7, 8, 9]), single])
    // A field holding a function (the logger, which carries functions) is handed out as it is.
    expect(view.log).toBe(log)
    expect(view.log.newScope()).toBe(log)
    view.status = 'closed'
    expect(connection.status).toBe('closed')
  })
})
