import { describe, expect, it } from 'vitest'
import { Shoal } from '../../src/index.js'
import { MemoryReplica } from '../../src/sim/model/memory-replica.js'
import { StoreReplica } from '../../src/sync/store-replica.js'
import { tempDir } from '../helpers/tempdir.js'
import { makeRows, replicaContract, stockTable, type ReplicaFactory } from './replica-contract.js'

const storeReplica: ReplicaFactory = async (tables, carries) => {
  const db = await Shoal.open({ dir: await tempDir() })
  for (const t of tables) await db.defineTable({ ...t })
  return { replica: new StoreReplica(db.replication(), carries), close: () => db.close() }
}

const memoryReplica: ReplicaFactory = async (tables, carries) => {
  const replica = new MemoryReplica(tables, carries, { actor: 'memory', nowSeconds: () => 0 })
  return { replica, close: async () => replica.dispose() }
}

replicaContract('StoreReplica (LevelDB)', storeReplica)
replicaContract('MemoryReplica (simulator)', memoryReplica)

describe('the two replicas agree', () => {
  it.each(['yjs', 'automerge', 'columns'] as const)('holding the same rows, they answer the same roots, children and leaf rows (%s)', async (engine) => {
    const table = stockTable(engine)
    const a = await storeReplica([table], {})
    const b = await memoryReplica([table], {})
    try {
      const rows = makeRows(table, '3', 50)
      await a.replica.apply('stock', '3', rows, 'w')
      await b.replica.apply('stock', '3', rows, 'w')
      const root = (r: typeof a) => r.replica.roots().filter((p) => p.table === 'stock')
      expect(root(b)).toEqual(root(a))
      for (let level = 0; level < 4; level++) {
        const nodes = [...Array(Math.min(16 ** level, 64)).keys()]
        expect(await b.replica.children('stock', '3', level, nodes)).toEqual(await a.replica.children('stock', '3', level, nodes))
      }
      const leaves = [...new Set((await a.replica.leafRows('stock', '3', [...Array(512).keys()])).map((r) => r.leaf))]
      expect(await b.replica.leafRows('stock', '3', leaves)).toEqual(await a.replica.leafRows('stock', '3', leaves))
    } finally {
      await a.close()
      await b.close()
    }
  })
})
