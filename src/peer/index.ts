// A running peer as a library: `import { Peer } from 'shoal/peer'` (Node only: TCP, LevelDB).
import '../polyfill.js'

export { Peer, API_FILE, type PeerOptions } from './peer.js'
export type { PeerCounters, PeerStatus, SyncStatus, SyncPeerStatus, LoadProgress } from '../status.js'
export { parseConfig, loadConfig, ConfigError, type PeerConfig } from '../config.js'
export { startHttpApi, type HttpApi, type HttpApiInit } from '../http/server.js'
export { createApiToken } from '../http/token.js'
export { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../http/constants.js'
