// @libp2p/websockets v10 dials with the global `WebSocket` (its listener uses the `ws` package).
// Node 22 has a global WebSocket; Node 20 has it only behind --experimental-websocket. Where it is
// missing, install `ws`'s client class: it implements the browser API the transport relies on
// (addEventListener with `once`, binaryType 'arraybuffer', bufferedAmount, CloseEvent's
// code/reason/wasClean), and it is the same library that already serves the inbound side.
import { WebSocket as WsWebSocket } from 'ws'

/**
 * Unlike a browser's WebSocket, `ws`'s is an EventEmitter: an 'error' emitted with no listener is
 * thrown, and crashes the process. The transport stops listening when a dial is aborted (the
 * node stopping, a dial timeout) and then closes the socket, which still emits the refused
 * connection or "closed before the connection was established". Its own listeners still get
 * every error; this one only keeps a late one from being thrown.
 */
class QuietWebSocket extends WsWebSocket {
  constructor(...args: ConstructorParameters<typeof WsWebSocket>) {
    super(...args)
    this.on('error', () => undefined)
  }
}

const g = globalThis as { WebSocket?: unknown }
if (typeof g.WebSocket !== 'function') g.WebSocket = QuietWebSocket

export {}
