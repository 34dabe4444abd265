/*
 * Composite identifiers. Table names, partition values and row keys never contain NUL (names are
 * identifiers; keys and partitions are refused with NUL in them), so NUL joins them without
 * ambiguity, and keys joined this way sort by their first part first (LevelDB ranges rely on it).
 */

/** Separator of the parts of a composite id. */
export const ID_SEP = '\u0000'

/** One (table, partition): '' is the partition of an unpartitioned table. */
export function partitionId(table: string, partition: string): string {
  return `${table}${ID_SEP}${partition}`
}

export function parsePartitionId(id: string): { table: string; partition: string } {
  const cut = id.indexOf(ID_SEP)
  if (cut < 0) throw new RangeError(`not a partition id: ${JSON.stringify(id.slice(0, 80))}`)
  return { table: id.slice(0, cut), partition: id.slice(cut + 1) }
}

/** One row: (table, partition, key). */
export function rowId(table: string, partition: string, key: string): string {
  return `${table}${ID_SEP}${partition}${ID_SEP}${key}`
}

export function parseRowId(id: string): { table: string; partition: string; key: string } {
  const first = id.indexOf(ID_SEP)
  const second = first < 0 ? -1 : id.indexOf(ID_SEP, first + 1)
  if (second < 0) throw new RangeError(`not a row id: ${JSON.stringify(id.slice(0, 80))}`)
  return { table: id.slice(0, first), partition: id.slice(first + 1, second), key: id.slice(second + 1) }
}

/** Readable form of a composite id for messages: parts joined by '/'. */
export function displayId(id: string): string {
  return id.split(ID_SEP).join('/')
}
