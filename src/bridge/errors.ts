import { ShoalError } from '../errors.js'

/** The bridge's configuration or a mirrored table cannot work as declared (bad URL, unmappable type, key mismatch…). */
export class BridgeConfigError extends ShoalError {
  constructor(message: string) {
    super('BRIDGE_CONFIG_INVALID', message)
  }
}

/** A SQL column's type has no Shoal column kind (or not the kind the Shoal schema declares). */
export class SqlTypeError extends ShoalError {
  constructor(
    readonly table: string,
    readonly column: string,
    message: string,
  ) {
    super('SQL_TYPE_UNSUPPORTED', message)
  }
}

/** A value read from SQL does not fit its Shoal column (e.g. text in a counter column). */
export class SqlValueError extends ShoalError {
  constructor(message: string) {
    super('SQL_VALUE_INVALID', message)
  }
}

/** A SQL schema change other than ADD COLUMN on a mirrored table. */
export class SqlSchemaChangeError extends ShoalError {
  constructor(message: string) {
    super('SQL_SCHEMA_CHANGE_REFUSED', message)
  }
}

/** The database could not be reached or refused the bridge's own statements. */
export class SqlConnectError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SQL_UNREACHABLE', message, options)
  }
}
