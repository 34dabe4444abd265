// The Yjs browser client the browser benchmark compares Shoal with: y-websocket for the network,
// y-indexeddb for storage, bundled by bench/browser.ts with esbuild (from this package's own
// node_modules) and driven from the page.
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { WebsocketProvider } from 'y-websocket'

;(window as unknown as { yjsClient: unknown }).yjsClient = { Y, IndexeddbPersistence, WebsocketProvider }
