import type { RowState } from '../../table/row.js'
import type { ResolvedSchema } from '../../table/schema.js'
import type { HistoryOp } from './workload.js'

/*
 * Checks a finished run (pure: history + final replica states in, violations out):
 *   - convergence: every live peer carrying a (table, partition) has the same digest root and
 *     the same materialized rows;
 *   - no acknowledged write lost, under the documented row rules (row.ts): a row's final life is the
 *     highest any replica started; only operations made in that life are visible;
 *       counters  = sum of acknowledged increments in the final life (plus possibly unacknowledged
 *                   ones, never fewer);
 *       registers = some operation of the final life wrote exactly that value;
 *       deletes   = an acknowledged delete that ended life L leaves the row at life > L;
 *       texts     = every acknowledged insertion of the final life is present (the workload never
 *                   deletes text);
 *   - partial replication: no peer holds a partition it does not carry;
 *   - roles (scenarios with a mesh section): no peer but its author holds a change written outside
 *     the author's rights — no value of a forbidden put or update, no token of a forbidden text
 *     edit, no counter above what allowed increments sum to, no row life only a forbidden write
 *     reached. The author keeps its own copy of that partition, which convergence leaves aside.
 */

export interface PeerFinal {
  peer: number
  up: boolean
  carries: (table: string, partition: string) => boolean
  /** (table, partition) → digest root (hex). */
  roots: Map<string, string>
  /** Partitions held (with at least one row). */
  held: Array<{ table: string; partition: string }>
  /** (table, partition, key) → state. */
  rows: Map<string, RowState>
}

export function rowId(table: string, partition: string, key: string): string {
  return `${table}/${partition}/${key}`
}

/**
 * The (peer, table, partition) where the peer wrote outside its rights: its copy of the partition
 * holds what every other peer refuses, so it is not held to converge with theirs.
 */
export class OwnCopies {
  private readonly keys = new Set<string>()

  add(op: HistoryOp): void {
    if (op.forbidden === true) this.keys.add(`${op.peer}\u0000${op.table}\u0000${op.partition}`)
  }

  has(peer: number, table: string, partition: string): boolean {
    return this.keys.size > 0 && this.keys.has(`${peer}\u0000${table}\u0000${partition}`)
  }

  static of(history: readonly HistoryOp[]): OwnCopies {
    const own = new OwnCopies()
    for (const op of history) own.add(op)
    return own
  }
}

const MAX_VIOLATIONS = 50
/** The root of a partition a replica does not hold (hex of 16 zero bytes). */
const ZERO_ROOT = '0'.repeat(32)

export function checkRun(tables: readonly ResolvedSchema[], history: readonly HistoryOp[], peers: readonly PeerFinal[]): string[] {
  const violations: string[] = []
  const report = (message: string): void => {
    if (violations.length < MAX_VIOLATIONS) violations.push(message)
  }
  const live = peers.filter((p) => p.up)
  const schemas = new Map(tables.map((t) => [t.name, t]))
  const own = OwnCopies.of(history)
  const carriers = (table: string, partition: string): PeerFinal[] => live.filter((p) => p.carries(table, partition) && !own.has(p.peer, table, partition))

  // Partial replication.
  for (const p of peers) {
    for (const h of p.held) if (!p.carries(h.table, h.partition)) report(`p${p.peer} holds ${h.table}/${h.partition}, which it does not carry`)
  }

  // Convergence: all live carriers of each partition agree.
  const partitions = new Set<string>()
  for (const p of live) for (const k of p.roots.keys()) partitions.add(k)
  const reference = new Map<string, PeerFinal>()
  for (const part of [...partitions].sort()) {
    const [table, partition] = part.split('/') as [string, string]
    const holders = carriers(table, partition)
    if (holders.length === 0) continue
    const first = holders[0]!
    reference.set(part, first)
    for (const other of holders.slice(1)) {
      if ((other.roots.get(part) ?? ZERO_ROOT) !== (first.roots.get(part) ?? ZERO_ROOT)) report(`${part}: p${other.peer} and p${first.peer} have different digests (not converged)`)
    }
  }
  const allRows = new Set<string>()
  for (const p of live) for (const k of p.rows.keys()) allRows.add(k)
  for (const id of [...allRows].sort()) {
    const [table, partition] = id.split('/') as [string, string]
    const holders = carriers(table, partition)
    const states = holders.map((p) => JSON.stringify(p.rows.get(id) ?? null))
    const odd = states.findIndex((s) => s !== states[0])
    if (odd > 0) report(`${id}: p${holders[odd]!.peer} has ${states[odd]} but p${holders[0]!.peer} has ${states[0]}`)
  }

  for (const message of forbiddenHeld(schemas, history, peers)) report(message)

  // Acknowledged writes, against the reference replica of each row.
  const byRow = new Map<string, HistoryOp[]>()
  for (const op of history) {
    // A forbidden write is checked above: it must be nowhere but at its author.
    if (op.forbidden === true) continue
    const id = rowId(op.table, op.partition, op.key)
    let list = byRow.get(id)
    if (list === undefined) byRow.set(id, (list = []))
    list.push(op)
  }
  for (const [id, ops] of [...byRow].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [table, partition] = id.split('/') as [string, string]
    const ref = reference.get(`${table}/${partition}`)
    if (ref === undefined) continue // no live carrier to check against
    const schema = schemas.get(table)!
    const state = ref.rows.get(id) ?? { alive: false, life: 0, values: {} }
    const ok = ops.filter((o) => o.status === 'ok')
    const maybe = ops.filter((o) => o.status !== 'failed')
    const life = state.life
    for (const o of ok) {
      if ((o.kind === 'put' || o.kind === 'update' || o.kind === 'increment' || o.kind === 'text') && (o.life ?? 0) > life) {
        report(`${id}: acknowledged ${o.kind} #${o.id} at p${o.peer} made life ${o.life}, but the row is at life ${life} (write lost)`)
      }
      if (o.kind === 'delete' && o.life !== undefined && life < o.life) {
        report(`${id}: acknowledged delete #${o.id} at p${o.peer} ended life ${o.life - 1}, but the row is back at life ${life} (delete not honoured)`)
      }
    }
    if (!state.alive) continue
    const inLife = (o: HistoryOp): boolean => o.life === life
    for (const [column, kind] of Object.entries(schema.columns)) {
      if (column === schema.primaryKey || column === schema.partitionBy) continue
      const value = state.values[column]
      if (kind === 'counter') {
        const acked = ok.filter((o) => o.kind === 'increment' && o.column === column && inLife(o)).reduce((s, o) => s + o.by!, 0)
        const most = maybe.filter((o) => o.kind === 'increment' && o.column === column && (o.status === 'invoked' || inLife(o))).reduce((s, o) => s + o.by!, 0)
        if (typeof value !== 'number' || value < acked) report(`${id}: counter ${column} is ${JSON.stringify(value)}, below the ${acked} acknowledged in life ${life} (increments lost)`)
        else if (value > most) report(`${id}: counter ${column} is ${value}, above the ${most} ever incremented in life ${life}`)
      } else if (kind === 'text') {
        const text = typeof value === 'string' ? value : ''
        for (const o of ok) if (o.kind === 'text' && o.column === column && inLife(o) && !text.includes(o.token!)) report(`${id}: text ${column} lacks acknowledged insertion ${o.token} #${o.id} of life ${life}`)
      } else if (value !== null && value !== undefined) {
        const writers = maybe.filter((o) => (o.kind === 'put' || o.kind === 'update') && o.values !== undefined && column in o.values && JSON.stringify(o.values[column]) === JSON.stringify(value))
        if (writers.length === 0) report(`${id}: column ${column} = ${JSON.stringify(value)} was never written`)
        else if (!writers.some((o) => o.status === 'invoked' || inLife(o))) report(`${id}: column ${column} = ${JSON.stringify(value)} was written in another life than the row's ${life}`)
      }
    }
  }
  return violations
}

/**
 * Changes written outside their author's rights that another peer holds. Each write's values and
 * tokens are unique to it, so holding one is proof; counters and lives are bounded by the writes
 * a peer may hold (every allowed write, and its own).
 */
function forbiddenHeld(schemas: ReadonlyMap<string, ResolvedSchema>, history: readonly HistoryOp[], peers: readonly PeerFinal[]): string[] {
  const forbidden = history.filter((o) => o.forbidden === true)
  if (forbidden.length === 0) return []
  const out: string[] = []
  const byRow = new Map<string, HistoryOp[]>()
  for (const op of history) {
    const id = rowId(op.table, op.partition, op.key)
    const list = byRow.get(id)
    if (list === undefined) byRow.set(id, [op])
    else list.push(op)
  }
  for (const p of peers) {
    for (const [id, ops] of byRow) {
      const trespass = ops.filter((o) => o.forbidden === true && o.peer !== p.peer)
      const state = p.rows.get(id)
      if (trespass.length === 0 || state === undefined) continue
      const schema = schemas.get(trespass[0]!.table)!
      const mayHold = ops.filter((o) => o.status !== 'failed' && (o.forbidden !== true || o.peer === p.peer))
      for (const o of trespass) {
        const what = `p${p.peer} holds ${o.kind} #${o.id} of p${o.peer} on ${id}, which p${o.peer} may not write`
        if (o.kind === 'put' || o.kind === 'update') {
          const held = Object.entries(o.values ?? {}).find(([column, value]) => column !== schema.partitionBy && JSON.stringify(state.values[column]) === JSON.stringify(value))
          if (held !== undefined) out.push(`${what} (${held[0]} = ${JSON.stringify(held[1])})`)
        } else if (o.kind === 'text') {
          const text = state.values[o.column!]
          if (typeof text === 'string' && text.includes(o.token!)) out.push(`${what} (text ${o.column} has ${o.token})`)
        }
      }
      // Counters: above every increment this peer may hold (in any life) means a forbidden one is in.
      for (const [column, kind] of Object.entries(schema.columns)) {
        if (kind !== 'counter' || !trespass.some((o) => o.kind === 'increment' && o.column === column)) continue
        const most = mayHold.filter((o) => o.kind === 'increment' && o.column === column).reduce((sum, o) => sum + o.by!, 0)
        const value = state.values[column]
        if (typeof value === 'number' && value > most) out.push(`p${p.peer} holds ${id} with counter ${column} = ${value}, above the ${most} its allowed increments sum to (an increment of p${trespass[0]!.peer}, which may not write it, is in)`)
      }
      // Lives: only writes move a row to a new life; one no write it may hold reached means a forbidden one did.
      if (mayHold.some((o) => o.status === 'invoked')) continue
      const reached = Math.max(0, ...mayHold.map((o) => o.life ?? 0))
      if (state.life > reached) out.push(`p${p.peer} holds ${id} at life ${state.life}, which only writes of p${trespass[0]!.peer} (which may not write it) reached; its allowed writes reached ${reached}`)
    }
  }
  return out
}
