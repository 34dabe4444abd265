/*
 * validateSchema per call: it runs for every schema a peer sends (each catalog row change), every
 * defineTable and every table of a config file. Not a per-row path, but a peer may replay many
 * catalog rows at start. Prints µs per call for a small, a wide and a refused schema.
 */
import { performance } from 'node:perf_hooks'
import { MAX_COLUMNS } from '../src/constants.js'
import { catalogValuesToSchema, schemaToCatalogValues } from '../src/table/catalog.js'
import { validateSchema } from '../src/table/schema.js'

const CALLS = 200_000
const ROUNDS = 5

const stock = { name: 'stock', primaryKey: 'id', partitionBy: 'store', engine: 'yjs', columns: { id: 'string', store: 'string', sku: 'string', qty: 'counter', shelf: 'string' } }
const wide = { name: 'wide', primaryKey: 'c0', columns: Object.fromEntries(Array.from({ length: MAX_COLUMNS }, (_, i) => [`c${i}`, i % 2 === 0 ? 'string' : 'number'])) }
const refused = { ...stock, primaryKey: 'qty' }
const catalogRow = schemaToCatalogValues(validateSchema(stock))

const cases: Array<[string, () => unknown, number]> = [
  ['stock (5 columns)', () => validateSchema(stock), CALLS],
  ['catalog row → schema', () => catalogValuesToSchema(catalogRow), CALLS],
  [`wide (${MAX_COLUMNS} columns)`, () => validateSchema(wide), CALLS / 50],
  [
    'refused (key is a counter)',
    () => {
      try {
        validateSchema(refused)
      } catch (error) {
        return error
      }
    },
    CALLS / 4,
  ],
]

for (const [label, call, calls] of cases) {
  let best = Infinity
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now()
    for (let i = 0; i < calls; i++) call()
    best = Math.min(best, ((performance.now() - start) * 1000) / calls)
  }
  console.log(`${label.padEnd(28)} ${best.toFixed(2).padStart(8)} µs per call (best of ${ROUNDS} × ${calls})`)
}
