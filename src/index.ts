import './polyfill.js'

export { Shoal, Table } from './shoal.js'
export type { ApplyBatchOptions, BatchOp, BatchResult, StoredRowState, Row, RowOptions, ScanOptions, ScanPage, ShoalOptions, ShoalStatus, TableStatus, TextEdit } from './shoal.js'
export type { ChangeEvent, ChangeListener, CheckReport } from './store/store.js'
export type { ColumnKind, EngineName, ResolvedSchema, TableSchema } from './table/schema.js'
export { COLUMN_KINDS, ENGINE_NAMES, DEFAULT_ENGINE, validateSchema } from './table/schema.js'
export * from './errors.js'
export { editBetween, moveIndex, rebase, type Edit } from './table/text-edit.js'
