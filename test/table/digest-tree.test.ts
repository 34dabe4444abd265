import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DIGEST_TREE_DEPTH } from '../../src/constants.js'
import { DigestTree, LEAF_COUNT, leafOf, rowHash, SparseDigestTree, TREE_FANOUT } from '../../src/table/digest-tree.js'
import { hex } from '../helpers/table.js'

describe('digest tree', () => {
  it('is the XOR of its rows whatever the order of updates, and removing a row undoes it', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 40 }), fc.nat(), (keys, seed) => {
        const hashes = keys.map((k, i) => [k, rowHash(k, new Uint8Array([i, seed & 255]))] as const)
        const a = new DigestTree()
        const b = new DigestTree()
        for (const [k, h] of hashes) a.apply(leafOf(k), h)
        for (const [k, h] of [...hashes].reverse()) b.apply(leafOf(k), h)
        expect(hex(a.root())).toBe(hex(b.root()))
        for (const [k, h] of hashes) a.apply(leafOf(k), h)
        expect(a.isEmpty()).toBe(true)
      }),
    )
  })

  it('keeps every inner node equal to the XOR of its children', () => {
    const tree = new DigestTree()
    for (let i = 0; i < 500; i++) tree.apply(leafOf(`k${i}`), rowHash(`k${i}`, new Uint8Array([i & 255])))
    for (const [level, index] of [[0, 0], [1, 3], [2, 77], [3, 1234]] as const) {
      const children = tree.children(level, index)
      const folded = new Uint8Array(16)
      for (let c = 0; c < TREE_FANOUT; c++) for (let i = 0; i < 16; i++) folded[i]! ^= children[c * 16 + i]!
      expect(hex(folded)).toBe(hex(tree.node(level, index)))
    }
    const rebuilt = DigestTree.fromLeaves(Array.from({ length: LEAF_COUNT }, (_, i) => [i, tree.leaf(i)] as const))
    expect(hex(rebuilt.root())).toBe(hex(tree.root()))
    expect(() => tree.node(DIGEST_TREE_DEPTH + 1, 0)).toThrow(RangeError)
  })

  it('spreads keys over the leaves', () => {
    const counts = new Map<number, number>()
    for (let i = 0; i < 100_000; i++) counts.set(leafOf(`sku-${i}`), (counts.get(leafOf(`sku-${i}`)) ?? 0) + 1)
    // 100k keys over 65,536 leaves: ~78% of leaves used if uniform; a poor hash would use far fewer.
    expect(counts.size).toBeGreaterThan(0.7 * LEAF_COUNT)
    expect(Math.max(...counts.values())).toBeLessThan(12)
  })
})

describe('SparseDigestTree', () => {
  it('matches the dense tree node for node', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), { maxLength: 40 }), (changes) => {
        const dense = new DigestTree()
        const sparse = new SparseDigestTree()
        for (const [leaf, change] of changes) {
          dense.apply(leaf, change)
          sparse.apply(leaf, change)
        }
        expect(sparse.root()).toEqual(dense.root())
        for (const [leaf] of changes) {
          expect(sparse.node(4, leaf)).toEqual(dense.node(4, leaf))
          expect(sparse.children(3, leaf >> 4)).toEqual(dense.children(3, leaf >> 4))
          expect(sparse.children(0, 0)).toEqual(dense.children(0, 0))
        }
        expect(sparse.isEmpty()).toBe(dense.isEmpty())
      }),
    )
  })
})
