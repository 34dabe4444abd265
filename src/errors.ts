/**
 * Every error Shoal raises on purpose is a ShoalError with a stable `code` (for scripts and the
 * HTTP API) and a message that says what to do about it.
 */
export class ShoalError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A table schema is malformed: bad name, unknown column kind, missing primary key… */
export class SchemaError extends ShoalError {
  constructor(message: string) {
    super('SCHEMA_INVALID', message)
  }
}

/** A schema change would alter something that cannot change once rows exist. */
export class SchemaConflictError extends ShoalError {
  constructor(message: string) {
    super('SCHEMA_CONFLICT', message)
  }
}

export class UnknownTableError extends ShoalError {
  constructor(readonly table: string, known: readonly string[]) {
    super(
      'TABLE_UNKNOWN',
      `unknown table '${table}'; define it first with defineTable()` +
        (known.length > 0 ? ` (known tables: ${known.join(', ')})` : ' (no tables are defined yet)'),
    )
  }
}

export class UnknownColumnError extends ShoalError {
  constructor(readonly table: string, readonly column: string, known: readonly string[]) {
    super(
      'COLUMN_UNKNOWN',
      `table '${table}' has no column '${column}' (columns: ${known.join(', ')}); ` +
        `add it to the schema with defineTable() before writing it`,
    )
  }
}

/** A value does not fit its column's kind, a key is malformed, an argument is out of range. */
export class ValidationError extends ShoalError {
  constructor(message: string) {
    super('VALUE_INVALID', message)
  }
}

export class RowNotFoundError extends ShoalError {
  constructor(readonly table: string, readonly key: string) {
    super('ROW_NOT_FOUND', `table '${table}' has no row '${key}' (absent or deleted); create it with put()`)
  }
}

export class PartitionError extends ShoalError {
  constructor(message: string) {
    super('PARTITION_INVALID', message)
  }
}

export class RowTooLargeError extends ShoalError {
  constructor(readonly table: string, readonly key: string, bytes: number, limit: number) {
    super(
      'ROW_TOO_LARGE',
      `row '${key}' of table '${table}' would be ${bytes} bytes encoded, over the ${limit}-byte limit; ` +
        `split large values across rows`,
    )
  }
}

/** A remote delta could not be decoded or applied. The row is left as it was. */
export class DeltaError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DELTA_INVALID', message, options)
  }
}

/** The database folder is locked by another process, or could not be opened. */
export class StoreOpenError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_OPEN_FAILED', message, options)
  }
}

/** A write could not be made durable; nothing of it was acknowledged or kept. */
export class StoreWriteError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_WRITE_FAILED', message, options)
  }
}

/** The peer behind the HTTP API has not finished starting (its API listens a moment before). */
export class PeerStartingError extends ShoalError {
  constructor() {
    super('STARTING', 'the peer is still starting; retry in a moment')
  }
}

export class StoreClosedError extends ShoalError {
  constructor() {
    super('STORE_CLOSED', 'the store is closed; open it again with Shoal.open()')
  }
}

/** Stored bytes could not be decoded: the data folder is damaged or was written by something else. */
export class StoreCorruptError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_CORRUPT', message, options)
  }
}

/** A message from a peer is malformed, of another protocol version, or too large. It is dropped. */
export class ProtocolError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PROTOCOL_INVALID', message, options)
  }
}

/** This peer may not make this write (its rights in a private mesh: docs/trust.md). */
export class ForbiddenError extends ShoalError {
  constructor(message: string) {
    super('FORBIDDEN', message)
  }
}
