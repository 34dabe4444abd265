import { ShoalError } from '../errors.js'

/** The body every error answer carries: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  error: { code: string; message: string }
}

/** A request the API refuses before it reaches the database: bad route, method, body or query. */
export class HttpError extends ShoalError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    /** Extra response headers, e.g. `Allow` on a 405. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message)
  }
}

/** The HTTP API could not listen on its address (in use, not local, not permitted). */
export class HttpStartError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HTTP_START_FAILED', message, options)
  }
}

/** Status codes for the database's own error codes; any other ShoalError is a 500. */
const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  TABLE_UNKNOWN: 404,
  ROW_NOT_FOUND: 404,
  VALUE_INVALID: 400,
  SCHEMA_INVALID: 400,
  PARTITION_INVALID: 400,
  COLUMN_UNKNOWN: 400,
  SCHEMA_CONFLICT: 409,
  ROW_TOO_LARGE: 413,
  FORBIDDEN: 403,
  STORE_CLOSED: 503,
  STARTING: 503,
}

export interface ErrorAnswer {
  status: number
  headers: Readonly<Record<string, string>>
  body: ErrorBody
  /** True for failures that are ours, not the caller's: worth logging. */
  internal: boolean
}

/** Maps anything thrown by a handler to the API's error contract. Stacks never leave the process. */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof HttpError) {
    return { status: error.status, headers: error.headers, body: { error: { code: error.code, message: error.message } }, internal: false }
  }
  if (error instanceof ShoalError) {
    const status = STATUS_BY_CODE[error.code] ?? 500
    return { status, headers: {}, body: { error: { code: error.code, message: error.message } }, internal: status >= 500 }
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: 'INTERNAL', message: 'internal error; the peer logged the details' } },
    internal: true,
  }
}
