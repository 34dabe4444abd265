/* The workloads' data: rows shaped like the retail `stock` table, scrambled single-column updates, and the states they must lead to. */
import { canonical, type StockChange, type StockRow } from './adapter.js'

export const idOf = (i: number): string => `r${String(i).padStart(7, '0')}`

export function makeRows(n: number): StockRow[] {
  return Array.from({ length: n }, (_, i) => ({ id: idOf(i), store: String(i % 8), sku: `sku-${i % 5000}`, qty: 1 + (i % 50), shelf: `A${i % 40}` }))
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b)
}

/** A scrambling step: i·step mod n visits every index once when gcd(step, n) = 1. */
export function stepFor(n: number, step = 7919): number {
  return gcd(step, n) === 1 ? step : gcd(step + 2, n) === 1 ? step + 2 : 1
}

/** `count` single-column updates of the rows `targets` picks, alternating qty / shelf; values tagged by `tag`. */
export function makeChanges(count: number, target: (i: number) => string, tag: number, shelf: string): StockChange[] {
  return Array.from({ length: count }, (_, i) => (i % 2 === 0 ? { id: target(i), values: { qty: tag + i } } : { id: target(i), values: { shelf: `${shelf}${i % 97}` } }))
}

export function everyRowOnce(n: number): (i: number) => string {
  const step = stepFor(n)
  return (i) => idOf((i * step) % n)
}

export function applyChanges(rows: readonly StockRow[], changes: readonly StockChange[]): StockRow[] {
  const byId = new Map(rows.map((r) => [r.id, { ...r }]))
  for (const c of changes) Object.assign(byId.get(c.id)!, c.values)
  return canonical([...byId.values()])
}

/**
 * After concurrent writers: every cell a writer touched must hold one writer's LAST write to it
 * (whichever the system's conflict rule picks), every other cell its value before.
 */
export function plausibleAfterConcurrent(base: readonly StockRow[], writers: ReadonlyArray<readonly StockChange[]>, final: readonly StockRow[]): boolean {
  const allowed = new Map<string, Set<unknown>>()
  for (const changes of writers) {
    const last = new Map<string, unknown>()
    for (const c of changes) for (const [k, v] of Object.entries(c.values)) last.set(`${c.id}\u0000${k}`, v)
    for (const [cell, v] of last) {
      const set = allowed.get(cell) ?? new Set()
      set.add(v)
      allowed.set(cell, set)
    }
  }
  const before = new Map(base.map((r) => [r.id, r]))
  if (final.length !== base.length) return false
  for (const row of final) {
    const old = before.get(row.id)
    if (old === undefined) return false
    for (const k of ['store', 'sku', 'qty', 'shelf'] as const) {
      const options = allowed.get(`${row.id}\u0000${k}`)
      if (options === undefined ? row[k] !== old[k] : !options.has(row[k])) return false
    }
  }
  return true
}
