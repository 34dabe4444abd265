import { MAX_CAUSAL_LENGTH, MAX_COLUMNS, MAX_VALUE_BYTES } from '../constants.js'
import { ValidationError } from '../errors.js'
import { utf8Length } from './hash.js'
import { isAlive, type RowDocument } from './row.js'
import { isRegisterKind, keyColumnValue, validateValue, type ResolvedSchema } from './schema.js'

/*
 * The one check every row passes before it is stored, whatever wrote it: a local operation or a
 * peer's delta or whole document. Local writes are validated value by value before they reach the
 * document; this checks the merged result, which is what a peer's bytes can make anything of.
 *
 * Checked: the causal length is an integer in 0…MAX_CAUSAL_LENGTH; in the current life and every
 * later one (earlier lives can never be read again), each cell fits its column's kind (registers
 * by validateValue; counters are safe integers; texts at most MAX_VALUE_BYTES); columns this
 * replica does not know are kept but bounded (at most MAX_COLUMNS columns in all, JSON-valid,
 * MAX_VALUE_BYTES each); and a live row's key and partition columns agree with where it is stored.
 */

export class RowCheckError extends ValidationError {
  constructor(
    readonly table: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`row ${JSON.stringify(key)} of table '${table}' refused: ${reason}`)
  }
}

export function checkRow(doc: RowDocument, schema: ResolvedSchema, key: string, partition: string): void {
  const fail = (reason: string): never => {
    throw new RowCheckError(schema.name, key, reason)
  }
  const engine = doc.doc
  const cl = engine.causalLength()
  if (!Number.isSafeInteger(cl) || cl < 0 || cl > MAX_CAUSAL_LENGTH) fail(`causal length ${cl} is not an integer in 0…${MAX_CAUSAL_LENGTH}`)
  const first = isAlive(cl) ? cl : cl + 1
  for (const life of engine.lives()) {
    if (!Number.isSafeInteger(life) || life < 1 || life > MAX_CAUSAL_LENGTH) fail(`cells written under life ${life}, which is not an integer in 1…${MAX_CAUSAL_LENGTH}`)
    if (life < first) continue
    checkCells(engine.read(life), schema, fail)
  }
  if (!isAlive(cl)) return
  const registers = engine.read(cl).registers
  const keyKind = schema.columns[schema.primaryKey]!
  if (registers.has(schema.primaryKey) && registers.get(schema.primaryKey) !== keyColumnValue(keyKind, key)) {
    fail(`its key column '${schema.primaryKey}' holds ${describe(registers.get(schema.primaryKey))}, not the row's key`)
  }
  if (schema.partitionBy !== null && registers.has(schema.partitionBy)) {
    const kind = schema.columns[schema.partitionBy]!
    if (registers.get(schema.partitionBy) !== keyColumnValue(kind, partition)) {
      fail(`its partition column '${schema.partitionBy}' holds ${describe(registers.get(schema.partitionBy))}, but the row is stored in partition ${JSON.stringify(partition)}`)
    }
  }
}

function checkCells(cells: ReturnType<RowDocument['doc']['read']>, schema: ResolvedSchema, fail: (reason: string) => never): void {
  const columns = new Set<string>()
  for (const [column, value] of cells.registers) {
    columns.add(column)
    const kind = schema.columns[column]
    if (kind !== undefined && !isRegisterKind(kind)) fail(`column '${column}' is a ${kind} but holds a register value`)
    try {
      validateValue(schema.name, column, kind ?? 'json', value === undefined ? null : value)
    } catch (error) {
      fail((error as Error).message)
    }
  }
  for (const [column, total] of cells.counters) {
    columns.add(column)
    const kind = schema.columns[column]
    if (kind !== undefined && kind !== 'counter') fail(`column '${column}' is a ${kind} but holds a counter`)
    if (!Number.isSafeInteger(total)) fail(`counter '${column}' totals ${total}, not a safe integer`)
  }
  for (const [column, text] of cells.texts) {
    columns.add(column)
    const kind = schema.columns[column]
    if (kind !== undefined && kind !== 'text') fail(`column '${column}' is a ${kind} but holds text`)
    const bytes = utf8Length(text)
    if (bytes > MAX_VALUE_BYTES) fail(`text '${column}' is ${bytes} bytes, over the ${MAX_VALUE_BYTES}-byte limit`)
  }
  if (columns.size > MAX_COLUMNS) fail(`it holds ${columns.size} columns, over the limit of ${MAX_COLUMNS}`)
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 60 ? text.slice(0, 60) + '…' : text
}
