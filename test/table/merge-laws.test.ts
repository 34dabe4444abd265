import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { RowDocument, RowOp } from '../../src/table/row.js'
import { ENGINES, hasText, hex, load, replica, stockSchema } from '../helpers/table.js'

/*
 * Property tests of the merge laws on both engines. fast-check prints the seed and path of any
 * failing case; replay it with `fc.assert(..., { seed, path })` or SHOAL_FC_SEED=<seed>.
 */

const RUNS = Number(process.env.SHOAL_FC_RUNS ?? 60)
const SEED = process.env.SHOAL_FC_SEED === undefined ? undefined : Number(process.env.SHOAL_FC_SEED)
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) }

const REGISTERS = ['name', 'price', 'active', 'tags'] as const
type Register = (typeof REGISTERS)[number]

const registerValue: Record<Register, fc.Arbitrary<unknown>> = {
  name: fc.string({ maxLength: 6 }),
  price: fc.integer({ min: -1000, max: 1000 }),
  active: fc.boolean(),
  tags: fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 3 }),
}

const columnWrite = fc.constantFrom(...REGISTERS).chain((column) => registerValue[column].map((value) => [column, value] as const))

type Step =
  | { type: 'put'; replica: number; values: [string, unknown][]; qty: number | null }
  | { type: 'update'; replica: number; values: [string, unknown][] }
  | { type: 'increment'; replica: number; by: number }
  | { type: 'edit'; replica: number; at: number; del: number; insert: string }
  | { type: 'delete'; replica: number }
  | { type: 'deliver'; from: number; to: number }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('put' as const), replica: fc.nat(), values: fc.array(columnWrite, { maxLength: 3 }).map((v) => v.map(([c, x]) => [c, x] as [string, unknown])), qty: fc.option(fc.integer({ min: -50, max: 50 })) }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('update' as const), replica: fc.nat(), values: fc.array(columnWrite, { minLength: 1, maxLength: 3 }).map((v) => v.map(([c, x]) => [c, x] as [string, unknown])) }) },
  { weight: 4, arbitrary: fc.record({ type: fc.constant('increment' as const), replica: fc.nat(), by: fc.integer({ min: -10, max: 10 }) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('edit' as const), replica: fc.nat(), at: fc.nat(), del: fc.nat({ max: 3 }), insert: fc.string({ maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('delete' as const), replica: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ type: fc.constant('deliver' as const), from: fc.nat(), to: fc.nat() }) },
)

interface Written {
  delta: Uint8Array
  life: number
  registers: [string, unknown][]
  counter: number
}

const historyArb = fc.record({
  replicas: fc.integer({ min: 3, max: 5 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 40 }),
  finalOrder: fc.array(fc.nat(), { minLength: 200, maxLength: 200 }),
  repairByVersion: fc.boolean(),
})

describe.each(ENGINES)('merge laws on %s', (engine) => {
  const schema = stockSchema(engine)

  function run(replicaCount: number, steps: Step[]): { docs: RowDocument[]; log: Written[] } {
    const docs = Array.from({ length: replicaCount }, (_, i) => replica(engine, `peer-${i}`))
    const log: Written[] = []
    for (const step of steps) {
      if (step.type === 'deliver') {
        if (log.length === 0) continue
        docs[step.to % replicaCount]!.applyDelta(log[step.from % log.length]!.delta)
        continue
      }
      // Text edits only where the engine has text cells.
      if (step.type === 'edit' && !hasText(engine)) continue
      const doc = docs[step.replica % replicaCount]!
      const before = doc.state(schema)
      let op: RowOp
      let counter = 0
      let registers: [string, unknown][] = []
      switch (step.type) {
        case 'put': {
          const values: Record<string, unknown> = { sku: 'row-1', store: '7', ...Object.fromEntries(step.values) }
          if (step.qty !== null) {
            values.qty = step.qty
            counter = step.qty - (before.alive ? (before.values.qty as number) : 0)
          }
          registers = Object.entries(values).filter(([c]) => c !== 'qty')
          op = { op: 'put', values }
          break
        }
        case 'update':
          registers = step.values
          op = { op: 'update', values: Object.fromEntries(step.values) }
          break
        case 'increment':
          counter = step.by
          op = { op: 'increment', column: 'qty', by: step.by }
          break
        case 'edit': {
          const length = before.alive ? (before.values.notes as string).length : 0
          const at = length === 0 ? 0 : step.at % (length + 1)
          op = { op: 'editText', column: 'notes', index: at, delete: Math.min(step.del, length - at), insert: step.insert }
          break
        }
        case 'delete':
          op = { op: 'delete' }
          break
      }
      let delta: Uint8Array | null
      try {
        delta = doc.apply(op, schema)
      } catch {
        continue // update/increment/edit of a row this replica sees as absent: refused, nothing written
      }
      if (delta !== null) log.push({ delta, life: doc.state(schema).life, registers, counter })
    }
    return { docs, log }
  }

  function assertConverged(docs: RowDocument[], log: Written[]): void {
    const digests = docs.map((d) => hex(d.digest()))
    expect(new Set(digests).size).toBe(1)
    const states = docs.map((d) => d.state(schema))
    for (const s of states) expect(s).toEqual(states[0])
    const final = states[0]!
    if (!final.alive) return
    const inLife = log.filter((w) => w.life === final.life)
    // Counters equal the sum of every increment written in the surviving life.
    expect(final.values.qty).toBe(inLife.reduce((sum, w) => sum + w.counter, 0))
    // Every final register value was written by some operation in that life (or is unset).
    for (const column of [...REGISTERS, 'sku', 'store']) {
      const value = final.values[column]
      const written = inLife.flatMap((w) => w.registers.filter(([c]) => c === column).map(([, v]) => JSON.stringify(v)))
      if (value === null) expect(written).toEqual([])
      else expect(written).toContain(JSON.stringify(value))
    }
  }

  it('converges for any delivery order, with duplicates and with loss repaired by versions', () => {
    fc.assert(
      fc.property(historyArb, ({ replicas, steps, finalOrder, repairByVersion }) => {
        const { docs, log } = run(replicas, steps)
        if (repairByVersion) {
          // Loss then repair: pairwise anti-entropy using only versions and deltaSince.
          for (let round = 0; round < 2; round++) {
            for (const a of docs) {
              for (const b of docs) {
                if (a === b) continue
                const missing = a.deltaSince(b.version())
                if (missing !== null) b.applyDelta(missing)
              }
            }
          }
        } else {
          // Every delta to every replica, shuffled, each delivered twice.
          for (const doc of docs) {
            const order = [...log, ...log].map((w, i) => ({ w, k: finalOrder[i % finalOrder.length]! + i / 1e6 }))
            order.sort((x, y) => x.k - y.k)
            for (const { w } of order) doc.applyDelta(w.delta)
          }
        }
        assertConverged(docs, log)
      }),
      params,
    )
  })

  it('a replica that says it holds all another has lacks nothing of it', () => {
    fc.assert(
      fc.property(historyArb, ({ replicas, steps }) => {
        const { docs } = run(replicas, steps)
        for (const a of docs) {
          for (const b of docs) {
            if (a === b || !a.holdsAll(b.version())) continue
            // b may still send cells a holds newer values of; merging them changes nothing.
            const missing = b.deltaSince(a.version())
            if (missing === null) continue
            const digest = hex(a.digest())
            const copy = load(engine, 'copy', a.encode())
            copy.applyDelta(missing)
            expect(hex(copy.digest())).toBe(digest)
            copy.dispose()
          }
        }
        // After a full exchange everyone holds all the others have.
        for (let round = 0; round < 2; round++) for (const a of docs) for (const b of docs) if (a !== b) {
          const missing = a.deltaSince(b.version())
          if (missing !== null) b.applyDelta(missing)
        }
        if (engine !== 'yjs') for (const a of docs) for (const b of docs) expect(a.holdsAll(b.version())).toBe(true)
      }),
      params,
    )
  })

  it('merging whole rows is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(fc.array(stepArb.filter((s) => s.type !== 'deliver'), { minLength: 3, maxLength: 30 }), (steps) => {
        // Three replicas share the row's creation, then diverge without exchanging anything.
        const { docs } = run(3, [{ type: 'put', replica: 0, values: [], qty: null }, { type: 'deliver', from: 0, to: 1 }, { type: 'deliver', from: 0, to: 2 }, ...steps])
        const bytes = docs.map((d) => d.encode())
        const merge = (...parts: Uint8Array[]): RowDocument => {
          const doc = load(engine, 'merger', parts[0]!)
          for (const p of parts.slice(1)) doc.applyDelta(p)
          return doc
        }
        const [a, b, c] = bytes as [Uint8Array, Uint8Array, Uint8Array]
        const ab = merge(a, b)
        const ba = merge(b, a)
        expect(hex(ab.digest())).toBe(hex(ba.digest()))
        expect(ab.state(schema)).toEqual(ba.state(schema))
        const left = merge(ab.encode(), c)
        const right = merge(a, merge(b, c).encode())
        expect(hex(left.digest())).toBe(hex(right.digest()))
        expect(left.state(schema)).toEqual(right.state(schema))
        const twice = merge(left.encode(), left.encode(), a, b, c)
        expect(hex(twice.digest())).toBe(hex(left.digest()))
      }),
      params,
    )
  })
})
