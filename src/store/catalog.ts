import { MAX_TABLES } from '../constants.js'
import { SchemaConflictError, SchemaError, UnknownTableError } from '../errors.js'
import type { Logger } from '../log.js'
import { quote } from '../log.js'
import { CATALOG_SCHEMA, CATALOG_TABLE, catalogValuesToSchema } from '../table/catalog.js'
import { extendSchema, type ResolvedSchema } from '../table/schema.js'

/**
 * The schemas in force, kept current from the committed rows of the `_tables` catalog (local
 * definitions and peers' alike). A catalog row is checked before it is stored (`check`): a peer
 * may add tables and columns, but never change a table's key, partition column, engine or a
 * column's kind, and never push the number of tables past MAX_TABLES.
 */
export class Catalog {
  private readonly schemas = new Map<string, ResolvedSchema>()

  constructor(
    private readonly log: Logger,
    private readonly maxTables = MAX_TABLES,
  ) {}

  /** The schema of a table (the catalog's own for CATALOG_TABLE), or undefined. */
  get(name: string): ResolvedSchema | undefined {
    return name === CATALOG_TABLE ? CATALOG_SCHEMA : this.schemas.get(name)
  }

  require(name: string): ResolvedSchema {
    const schema = this.get(name)
    if (schema === undefined) throw new UnknownTableError(name, [...this.schemas.keys()])
    return schema
  }

  /** User tables, by name. */
  tables(): ResolvedSchema[] {
    return [...this.schemas.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  /**
   * The schema a catalog row (as it would be after a change) defines, if this replica accepts it:
   * a valid schema named like its row, compatible with the table's current definition.
   * Throws SchemaError / SchemaConflictError otherwise.
   */
  check(name: string, values: Readonly<Record<string, unknown>>): ResolvedSchema {
    const next = catalogValuesToSchema(values)
    if (next.name !== name) throw new SchemaError(`catalog row '${name}' describes table '${next.name}'`)
    const current = this.schemas.get(name)
    if (current === undefined) {
      if (this.schemas.size >= this.maxTables) throw new SchemaError(`this store holds ${this.schemas.size} tables, the limit (MAX_TABLES = ${this.maxTables}); table '${name}' is refused`)
      return next
    }
    return extendSchema(current, next)
  }

  /** Takes a committed catalog row into the schemas in force (a deleted row changes nothing). */
  committed(name: string, values: Readonly<Record<string, unknown>> | null): void {
    if (values === null) return
    try {
      this.schemas.set(name, this.check(name, values))
    } catch (error) {
      // Only rows stored before their checks existed can get here; keep the last good schema.
      const why = error instanceof SchemaError || error instanceof SchemaConflictError ? error.message : String(error)
      this.log.warn(`ignoring the stored schema of table ${quote(name)}: ${why}`, { table: name })
    }
  }
}
