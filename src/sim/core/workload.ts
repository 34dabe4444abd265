import type { RowOp, RowState } from '../../table/row.js'
import type { ResolvedSchema } from '../../table/schema.js'
import type { WorkloadSpec } from './scenario.js'
import type { Rng } from './rng.js'

/*
 * The simulated workload and its history (Jepsen style): every operation is recorded when invoked
 * and completed as acknowledged (ok) or failed, with the row's life at the writer after it, which
 * the checker needs to apply the delete rule.
 */

export type OpKind = 'put' | 'update' | 'increment' | 'delete' | 'text'

export interface HistoryOp {
  id: number
  peer: number
  at: number
  kind: OpKind
  table: string
  partition: string
  key: string
  /** put / update: the columns written. */
  values?: Record<string, unknown>
  /** increment: column and amount. */
  column?: string
  by?: number
  /** text: the unique token inserted. */
  token?: string
  status: 'invoked' | 'ok' | 'failed'
  /** The writer had no right to write (table, partition) under the scenario's roles: no other peer may ever hold it. */
  forbidden?: boolean
  /** The row's life at the writer after the operation (ok only). */
  life?: number
  error?: string
}

/** A generated operation, before it runs. */
export interface PlannedOp {
  kind: OpKind
  table: ResolvedSchema
  partition: string
  key: string
  /** Builds the row operation; `current` is the writer's view of the row (for text positions). */
  op: (current: RowState | null) => RowOp
  record: Pick<HistoryOp, 'values' | 'column' | 'by' | 'token'>
}

/** Column writers by kind, so every value written is unique to its operation (the checker relies on it). */
function valueFor(kind: string, opId: number): unknown {
  switch (kind) {
    case 'string':
      return `v${opId}`
    case 'number':
      return opId
    case 'boolean':
      return opId % 2 === 0
    case 'json':
      return { op: opId }
    default:
      return null
  }
}

export class Workload {
  constructor(
    private readonly spec: WorkloadSpec,
    private readonly tables: readonly ResolvedSchema[],
    private readonly rng: Rng,
  ) {}

  /** Time to the next operation (exponential inter-arrival: a Poisson process). */
  nextGapMs(): number {
    if (this.spec.opsPerSecond <= 0) return Infinity
    return (-Math.log(1 - this.rng.float()) * 1000) / this.spec.opsPerSecond
  }

  /** The partition a key lives in: fixed per (table, key), so every peer agrees. */
  partitionOf(table: ResolvedSchema, keyIndex: number): string {
    return table.partitionBy === null ? '' : this.spec.partitions[keyIndex % this.spec.partitions.length]!
  }

  /**
   * The next operation. `alive` tells whether the writer holds the row live: an update, increment or
   * text edit of a row it does not hold becomes an insert (a re-insert after a delete), so most
   * operations do something rather than fail.
   */
  plan(opId: number, alive: (table: string, partition: string, key: string) => boolean): PlannedOp {
    let kind = this.rng.weighted(this.spec.mix)
    const counterTables = this.tables.filter((t) => Object.values(t.columns).includes('counter'))
    const textTables = this.tables.filter((t) => Object.values(t.columns).includes('text'))
    if (kind === 'increment' && counterTables.length === 0) kind = 'update'
    if (kind === 'text' && textTables.length === 0) kind = 'update'
    const table = kind === 'increment' ? this.rng.pick(counterTables) : kind === 'text' ? this.rng.pick(textTables) : this.rng.pick(this.tables)
    const hot = this.spec.hotKeys > 0 && this.rng.chance(this.spec.hotFraction)
    const keyIndex = hot ? this.rng.int(0, this.spec.hotKeys - 1) : this.rng.int(0, this.spec.keys - 1)
    const partition = this.partitionOf(table, keyIndex)
    const key = `k${keyIndex}`
    if ((kind === 'update' || kind === 'increment' || kind === 'text') && !alive(table.name, partition, key)) kind = 'put'
    const plain = Object.entries(table.columns).filter(([c, k]) => c !== table.primaryKey && c !== table.partitionBy && k !== 'counter' && k !== 'text')
    switch (kind) {
      case 'put':
      case 'update': {
        const values: Record<string, unknown> = {}
        const chosen = plain.length === 0 ? [] : this.rng.shuffle([...plain]).slice(0, this.rng.int(1, plain.length))
        for (const [column, k] of chosen) values[column] = valueFor(k, opId)
        if (kind === 'put' && table.partitionBy !== null) values[table.partitionBy] = partition
        return { kind, table, partition, key, op: () => ({ op: kind, values }), record: { values } }
      }
      case 'increment': {
        const column = this.rng.pick(Object.entries(table.columns).filter(([, k]) => k === 'counter'))[0]
        const by = this.rng.int(1, 5)
        return { kind, table, partition, key, op: () => ({ op: 'increment', column, by }), record: { column, by } }
      }
      case 'text': {
        const column = this.rng.pick(Object.entries(table.columns).filter(([, k]) => k === 'text'))[0]
        const token = `⟨${opId}⟩`
        const at = this.rng.float()
        return {
          kind,
          table,
          partition,
          key,
          op: (current) => {
            const text = (current?.values[column] as string | undefined) ?? ''
            // Insert between tokens, never inside one, so every token stays whole.
            const bounds = [0, ...[...text.matchAll(/⟩/g)].map((m) => m.index + 1)]
            return { op: 'editText', column, index: bounds[Math.floor(at * bounds.length)]!, delete: 0, insert: token }
          },
          record: { column, token },
        }
      }
      case 'delete':
        return { kind, table, partition, key, op: () => ({ op: 'delete' }), record: {} }
    }
  }
}
