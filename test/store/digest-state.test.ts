import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LEAF_MEMO_SIZE } from '../../src/constants.js'
import { Shoal } from '../../src/index.js'
import { DigestState } from '../../src/store/digest-state.js'
import { leafOf } from '../../src/table/digest-tree.js'
import { tempDir } from '../helpers/tempdir.js'

const value = (n: number): Uint8Array => new Uint8Array(16).fill(n % 256)

describe('the digest leaf memo', () => {
  it('knows the leaves commits wrote, at most LEAF_MEMO_SIZE of them (full, it starts over)', () => {
    const state = new DigestState()
    expect(state.knownLeaf('t\u0000p', 1)).toBeUndefined()
    state.leavesWritten(Array.from({ length: LEAF_MEMO_SIZE }, (_, leaf) => ({ partition: 't\u0000p', leaf, value: value(leaf) })))
    expect(state.knownLeaf('t\u0000p', 0)).toEqual(value(0))
    expect(state.knownLeaf('t\u0000p', LEAF_MEMO_SIZE - 1)).toEqual(value(LEAF_MEMO_SIZE - 1))
    // Writing a known leaf again replaces its value and takes no room.
    state.leavesWritten([{ partition: 't\u0000p', leaf: 1, value: value(7) }])
    expect(state.knownLeaf('t\u0000p', 1)).toEqual(value(7))
    // One more leaf: the memo starts over with it.
    state.leavesWritten([{ partition: 't\u0000q', leaf: 0, value: value(8) }])
    expect(state.knownLeaf('t\u0000q', 0)).toEqual(value(8))
    expect(state.knownLeaf('t\u0000p', 1)).toBeUndefined()
    state.leavesWritten([{ partition: 't\u0000p', leaf: 2, value: value(9) }])
    state.clear()
    expect(state.knownLeaf('t\u0000p', 2)).toBeUndefined()
  })

  it('a commit to a leaf written before reads nothing from LevelDB', async () => {
    const db = await Shoal.open({ dir: await tempDir() })
    await db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', engine: 'columns', columns: { sku: 'string', store: 'string', qty: 'number' } })
    const t = db.table('stock')
    await t.put('A', { store: '1', qty: 1 })
    const leaves = (db as unknown as { store: { core: { levels: { leaves: { getMany: (keys: string[]) => Promise<unknown> } } } } }).store.core.levels.leaves
    const getMany = leaves.getMany.bind(leaves)
    let reads = 0
    leaves.getMany = async (keys) => {
      reads += keys.length
      return getMany(keys)
    }
    await t.update('A', { qty: 2 })
    expect(reads).toBe(0)
    await t.put('B', { store: '1', qty: 1 })
    expect(reads).toBe(leafOf('B') === leafOf('A') ? 0 : 1)
    expect((await db.check()).problems).toEqual([])
    await db.close()
  })

  it('a leaf written while its partition\'s tree was cached is known after the tree is evicted', async () => {
    const db = await Shoal.open({ dir: await tempDir(), treeCacheSize: 1 })
    await db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', engine: 'columns', columns: { sku: 'string', store: 'string', qty: 'number' } })
    const t = db.table('stock')
    await t.put('A', { store: '1', qty: 1 })
    await t.put('B', { store: '2', qty: 1 })
    await db.replication().digestTree('stock', '1')
    await t.update('A', { qty: 2 }) // moves the cached tree of partition 1
    await db.replication().digestTree('stock', '2') // evicts it
    await t.update('A', { qty: 3 })
    expect((await db.check()).problems).toEqual([])
    await db.close()
  })

  it('keeps every leaf true while digest trees are loaded, updated and evicted between commits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.record({ write: fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4'), store: fc.constantFrom('1', '2', '3'), qty: fc.nat(9) }), fc.record({ tree: fc.constantFrom('1', '2', '3') })), { minLength: 1, maxLength: 30 }),
        async (steps) => {
          const dir = await tempDir()
          // One cached tree at a time: loading another partition's tree evicts the last one.
          const db = await Shoal.open({ dir, treeCacheSize: 1 })
          await db.defineTable({ name: 'stock', primaryKey: 'sku', partitionBy: 'store', engine: 'columns', columns: { sku: 'string', store: 'string', qty: 'number' } })
          const t = db.table('stock')
          const placed = new Map<string, string>()
          for (const step of steps) {
            if ('tree' in step) await db.replication().digestTree('stock', step.tree)
            else {
              // A key lives in the partition it was first written to.
              const store = placed.get(step.write) ?? step.store
              placed.set(step.write, store)
              await t.put(step.write, { store, qty: step.qty })
            }
          }
          expect((await db.check()).problems).toEqual([])
          const roots = (await db.status()).tables[0]!.partitions
          await db.close()
          const again = await Shoal.open({ dir })
          expect((await again.status()).tables[0]!.partitions).toEqual(roots)
          expect((await again.check()).problems).toEqual([])
          await again.close()
        },
      ),
      { numRuns: 40 },
    )
  })
})
