import { describe, expect, it } from 'vitest'
import { checkRun, type PeerFinal } from '../../../src/sim/core/checker.js'
import { DEFAULT_TABLES } from '../../../src/sim/core/scenario.js'
import type { HistoryOp } from '../../../src/sim/core/workload.js'
import type { RowState } from '../../../src/table/row.js'

const row = (life: number, values: Record<string, unknown> = {}): RowState => ({ alive: life % 2 === 1, life, values })

function peer(n: number, rows: Record<string, RowState>, options: { root?: string; carries?: (t: string, p: string) => boolean; up?: boolean } = {}): PeerFinal {
  const map = new Map(Object.entries(rows))
  const parts = new Set([...map.keys()].map((id) => id.split('/').slice(0, 2).join('/')))
  return {
    peer: n,
    up: options.up ?? true,
    carries: options.carries ?? (() => true),
    roots: new Map([...parts].map((p) => [p, options.root ?? 'aa'])),
    held: [...parts].map((p) => ({ table: p.split('/')[0]!, partition: p.split('/')[1]! })),
    rows: map,
  }
}

let nextId = 0
const op = (o: Partial<HistoryOp>): HistoryOp => ({ id: nextId++, peer: 0, at: 0, kind: 'put', table: 'stock', partition: '1', key: 'k', status: 'ok', life: 1, ...o })

describe('the run checker', () => {
  it('accepts a consistent history', () => {
    const history = [op({ values: { sku: 'v1' } }), op({ kind: 'increment', column: 'qty', by: 3 }), op({ kind: 'increment', column: 'qty', by: 2, status: 'invoked', life: undefined })]
    const final = { 'stock/1/k': row(1, { sku: 'v1', qty: 3, shelf: null }) }
    expect(checkRun(DEFAULT_TABLES, history, [peer(0, final), peer(1, final)])).toEqual([])
    // an unacknowledged increment may or may not have landed
    expect(checkRun(DEFAULT_TABLES, history, [peer(0, { 'stock/1/k': row(1, { sku: 'v1', qty: 5 }) })])).toEqual([])
  })

  it('reports each kind of violation, naming the row', () => {
    const cases: Array<[HistoryOp[], PeerFinal[], RegExp]> = [
      [[op({ kind: 'increment', column: 'qty', by: 4 })], [peer(0, { 'stock/1/k': row(1, { qty: 1 }) })], /stock\/1\/k: counter qty is 1, below the 4 acknowledged/],
      [[op({ kind: 'delete', life: 2 })], [peer(0, { 'stock/1/k': row(1, { qty: 0 }) })], /acknowledged delete .* but the row is back at life 1/],
      [[op({ values: { sku: 'v1' } })], [peer(0, { 'stock/1/k': row(1, { sku: 'v9' }) })], /column sku = "v9" was never written/],
      [[op({ values: { sku: 'v1' }, life: 1 })], [peer(0, { 'stock/1/k': row(3, { sku: 'v1' }) })], /written in another life than the row's 3/],
      [[op({ table: 'sales', kind: 'text', column: 'note', token: '⟨7⟩' })], [peer(0, { 'sales/1/k': row(1, { note: '⟨8⟩' }) })], /text note lacks acknowledged insertion ⟨7⟩/],
      [[], [peer(0, { 'stock/2/k': row(1) }, { carries: (_t, p) => p !== '2' })], /p0 holds stock\/2, which it does not carry/],
      [[], [peer(0, { 'stock/1/k': row(1, { sku: 'a' }) }, { root: 'aa' }), peer(1, { 'stock/1/k': row(1, { sku: 'b' }) }, { root: 'bb' })], /stock\/1: p1 and p0 have different digests/],
    ]
    for (const [history, peers, message] of cases) {
      const violations = checkRun(DEFAULT_TABLES, history, peers)
      expect(violations.some((v) => message.test(v)), `${message} in ${JSON.stringify(violations)}`).toBe(true)
    }
  })

  it('ignores peers that are down', () => {
    const history = [op({ values: { sku: 'v1' } })]
    expect(checkRun(DEFAULT_TABLES, history, [peer(0, { 'stock/1/k': row(1, { sku: 'v1', qty: 0 }) }), peer(1, {}, { up: false })])).toEqual([])
  })

  it('holds a write made outside its author\'s rights to its author alone', () => {
    // p1 wrote sku v2, a token and 5 units, outside its rights; p0 (allowed) wrote v1 and 3 units.
    const history = [
      op({ peer: 0, values: { sku: 'v1' } }),
      op({ peer: 0, kind: 'increment', column: 'qty', by: 3 }),
      op({ peer: 1, values: { shelf: 'v2' }, forbidden: true }),
      op({ peer: 1, kind: 'increment', column: 'qty', by: 5, forbidden: true }),
      op({ peer: 1, table: 'sales', kind: 'text', column: 'note', token: '⟨9⟩', forbidden: true }),
      op({ peer: 1, key: 'k2', kind: 'delete', life: 2, forbidden: true }),
    ]
    const mesh = { 'stock/1/k': row(1, { sku: 'v1', qty: 3, shelf: null }) }
    const author = { 'stock/1/k': row(1, { sku: 'v1', qty: 8, shelf: 'v2' }), 'sales/1/k': row(1, { note: '⟨9⟩' }), 'stock/1/k2': row(2) }
    // The author's copy differs from the others' (other digest): not a convergence failure.
    expect(checkRun(DEFAULT_TABLES, history, [peer(0, mesh), peer(1, author, { root: 'bb' }), peer(2, mesh)])).toEqual([])
    const cases: Array<[Record<string, RowState>, RegExp]> = [
      [{ 'stock/1/k': row(1, { sku: 'v1', qty: 3, shelf: 'v2' }) }, /p2 holds put #\d+ of p1 on stock\/1\/k, which p1 may not write \(shelf = "v2"\)/],
      [{ 'stock/1/k': row(1, { sku: 'v1', qty: 8, shelf: null }) }, /p2 holds stock\/1\/k with counter qty = 8, above the 3 its allowed increments sum to/],
      [{ ...mesh, 'sales/1/k': row(1, { note: '⟨9⟩' }) }, /p2 holds text #\d+ of p1 on sales\/1\/k, .*\(text note has ⟨9⟩\)/],
      [{ ...mesh, 'stock/1/k2': row(2) }, /p2 holds stock\/1\/k2 at life 2, which only writes of p1 \(which may not write it\) reached/],
    ]
    for (const [rows, message] of cases) {
      const violations = checkRun(DEFAULT_TABLES, history, [peer(0, mesh), peer(1, author, { root: 'bb' }), peer(2, rows, { up: false })])
      expect(violations.some((v) => message.test(v)), `${message} in ${JSON.stringify(violations)}`).toBe(true)
    }
  })
})
