// The browser entry (package.json "exports" condition `browser`): the library and a browser peer.
import './polyfill.js'

export { Shoal, Table } from './shoal.js'
export type { ApplyBatchOptions, BatchOp, BatchResult, StoredRowState, Row, RowOptions, ScanOptions, ScanPage, ShoalOptions, ShoalStatus, TableStatus, TextEdit } from './shoal.js'
export type { ChangeEvent, ChangeListener, CheckReport } from './store/store.js'
export type { ColumnKind, EngineName, ResolvedSchema, TableSchema } from './table/schema.js'
export { COLUMN_KINDS, ENGINE_NAMES, DEFAULT_ENGINE, validateSchema } from './table/schema.js'
export * from './errors.js'
export { BrowserPeer, type BrowserPeerOptions } from './peer/browser-peer.js'
export type { WebRtcOptions } from './net/browser-node.js'
export type { PeerCounters, PeerStatus, SyncStatus, SyncPeerStatus } from './status.js'
export { editBetween, moveIndex, rebase, type Edit } from './table/text-edit.js'
export { consoleLogger, MemoryLogger, silentLogger, type Logger, type LogLevel } from './log.js'
