import { describe, expect, it } from 'vitest'
import '../../src/net/websocket-polyfill.js'

describe('the WebSocket client Node peers dial with', () => {
  it('closing a socket still connecting, once nobody listens, does not throw its error (an aborted dial)', async () => {
    const Client = (globalThis as unknown as { WebSocket: typeof WebSocket }).WebSocket
    // Port 1 on loopback: refused. The transport's listeners are gone once its dial is aborted.
    const socket = new Client('ws://127.0.0.1:1/')
    socket.close()
    const closed = await new Promise<boolean>((resolve) => {
      const check = (): void => (socket.readyState === socket.CLOSED ? resolve(true) : void setTimeout(check, 20))
      check()
    })
    expect(closed).toBe(true)
  })
})
