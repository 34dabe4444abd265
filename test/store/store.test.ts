import { stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PartitionError, RowNotFoundError, Shoal, type EngineName, type Row } from '../../src/index.js'
import { tempDir } from '../helpers/tempdir.js'

/*
 * The store against a sequential model: waves of operations issued without awaiting (so they
 * share group-commit batches, race reads and churn a tiny row cache) must each succeed or fail
 * exactly as the model says, and leave exactly the model's rows, consistent on disk.
 */

const RUNS = Number(process.env.SHOAL_FC_RUNS ?? 60) > 60 ? 20 : 8
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']
const STORES = ['s1', 's2']

type Op =
  | { type: 'put'; key: string; store: string; name: string | null; qty: number | null }
  | { type: 'update'; key: string; name: string }
  | { type: 'increment'; key: string; by: number }
  | { type: 'append'; key: string; text: string }
  | { type: 'delete'; key: string }
  | { type: 'get'; key: string }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), key: fc.constantFrom(...KEYS), store: fc.constantFrom(...STORES), name: fc.option(fc.string({ maxLength: 3 })), qty: fc.option(fc.integer({ min: 0, max: 9 })) }),
  fc.record({ type: fc.constant('update' as const), key: fc.constantFrom(...KEYS), name: fc.string({ maxLength: 3 }) }),
  fc.record({ type: fc.constant('increment' as const), key: fc.constantFrom(...KEYS), by: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ type: fc.constant('append' as const), key: fc.constantFrom(...KEYS), text: fc.string({ minLength: 1, maxLength: 2 }) }),
  fc.record({ type: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }),
  fc.record({ type: fc.constant('get' as const), key: fc.constantFrom(...KEYS) }),
)

interface ModelRow {
  partition: string
  alive: boolean
  values: Row
}

type Outcome = 'ok' | 'notFound' | 'partition' | 'noop'

/** `text`: the table's notes column is text (on the columns engine, which has none, it is an unset register). */
function modelStep(model: Map<string, ModelRow>, op: Op, text = true): Outcome {
  const row = model.get(op.key)
  const alive = row?.alive === true
  switch (op.type) {
    case 'get':
      return 'ok'
    case 'put': {
      if (row !== undefined && row.partition !== op.store) return 'partition'
      const base: Row = alive ? row!.values : { id: op.key, store: op.store, name: null, qty: 0, notes: text ? '' : null }
      const values = { ...base, ...(op.name === null ? {} : { name: op.name }), ...(op.qty === null ? {} : { qty: op.qty }) }
      model.set(op.key, { partition: op.store, alive: true, values })
      return 'ok'
    }
    case 'delete':
      if (!alive) return 'noop'
      row!.alive = false
      return 'ok'
    default:
      if (!alive) return 'notFound'
      if (op.type === 'update') row!.values.name = op.name
      if (op.type === 'increment') row!.values.qty = (row!.values.qty as number) + op.by
      if (op.type === 'append') row!.values.notes = (row!.values.notes as string) + op.text
      return 'ok'
  }
}

async function issue(db: Shoal, op: Op, notes: Map<string, number>): Promise<Outcome> {
  const t = db.table('stock')
  try {
    switch (op.type) {
      case 'get':
        await t.get(op.key)
        return 'ok'
      case 'put':
        await t.put(op.key, { store: op.store, ...(op.name === null ? {} : { name: op.name }), ...(op.qty === null ? {} : { qty: op.qty }) })
        return 'ok'
      case 'update':
        await t.update(op.key, { name: op.name })
        return 'ok'
      case 'increment':
        await t.increment(op.key, 'qty', op.by)
        return 'ok'
      case 'append':
        // The index is only known at apply time; appending at the model's length keeps it exact.
        await t.editText(op.key, 'notes', { index: notes.get(op.key) ?? 0, insert: op.text })
        return 'ok'
      case 'delete':
        return (await t.delete(op.key)) ? 'ok' : 'noop'
    }
  } catch (error) {
    if (error instanceof RowNotFoundError) return 'notFound'
    if (error instanceof PartitionError) return 'partition'
    throw error
  }
}

describe.each(['yjs', 'automerge', 'columns'] as EngineName[])('store against a sequential model on %s', (engine) => {
  const text = engine !== 'columns'
  it('gives every concurrent operation the model outcome and ends with the model rows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(text ? opArb : opArb.filter((op) => op.type !== 'append'), { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 8 }), async (waves) => {
        const dir = await tempDir()
        const db = await Shoal.open({ dir, rowCacheSize: 2 })
        const model = new Map<string, ModelRow>()
        try {
          await db.defineTable({ name: 'stock', primaryKey: 'id', partitionBy: 'store', engine, columns: { id: 'string', store: 'string', name: 'string', qty: 'counter', notes: text ? 'text' : 'string' } })
          for (const wave of waves) {
            const expected: Outcome[] = []
            const issued: Promise<Outcome>[] = []
            for (const op of wave) {
              const lengths = new Map([...model].map(([k, r]) => [k, r.alive && text ? (r.values.notes as string).length : 0]))
              expected.push(modelStep(model, op, text))
              issued.push(issue(db, op, lengths))
            }
            expect(await Promise.all(issued)).toEqual(expected)
          }
          for (const key of KEYS) {
            const row = model.get(key)
            expect(await db.table('stock').get(key)).toEqual(row?.alive === true ? row.values : null)
          }
          expect((await db.check()).problems).toEqual([])
        } finally {
          await db.close()
        }
      }),
      { numRuns: RUNS },
    )
  })
})

describe('data folder', () => {
  it('is created readable by its owner only (0700), with any missing parents', async () => {
    const dir = join(await tempDir(), 'nested', 'hq')
    const db = await Shoal.open({ dir })
    await db.close()
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(dirname(dir))).mode & 0o777).toBe(0o700)
  })
})
