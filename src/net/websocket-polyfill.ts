// @libp2p/websockets v10 dials with the global `WebSocket` (its listener uses the `ws` package).
// Node 22 has a global WebSocket; Node 20 has it only behind --experimental-websocket. Where it is
// missing, install `ws`'s client class: it implements the browser API the transport relies on
// (addEventListener with `once`, binaryType 'arraybuffer', bufferedAmount, CloseEvent's
// code/reason/wasClean), and it is the same library that already serves the inbound side.
import { WebSocket as WsWebSocket } from 'ws'

const g = globalThis as { WebSocket?: unknown }
if (typeof g.WebSocket !== 'function') g.WebSocket = WsWebSocket

export {}
