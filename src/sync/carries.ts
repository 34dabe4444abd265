import { CATALOG_TABLE } from '../table/catalog.js'

/**
 * What a peer carries (partial replication, SymmetricDS's routers): table → the only partitions of
 * it the peer receives and stores. A table not listed is carried whole; the schema catalog always
 * is. The same shape in peer configs, scenario files and on the wire (a peer's `hello`).
 */
export type Carries = Readonly<Record<string, readonly string[]>>

/**
 * Whether a peer with these carries takes rows of (table, partition). `holds`, when given, says
 * whether the peer already stores rows of the partition: those count as carried (they were
 * written there).
 */
export function isCarried(carries: Carries, table: string, partition: string, holds?: (table: string, partition: string) => boolean): boolean {
  if (table === CATALOG_TABLE) return true
  const listed = carries[table]
  if (listed === undefined) return true
  return listed.includes(partition) || (holds?.(table, partition) ?? false)
}
