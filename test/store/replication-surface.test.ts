import { describe, expect, it } from 'vitest'
import { DIGEST_TREE_DEPTH } from '../../src/constants.js'
import { Shoal, type ChangeEvent } from '../../src/index.js'
import { LEAF_COUNT, leafOf, TREE_FANOUT } from '../../src/table/digest-tree.js'
import type { DigestTreeLike } from '../../src/table/digest-tree.js'
import { hex } from '../helpers/table.js'
import { tempDir } from '../helpers/tempdir.js'

/** Leaves where two trees differ, found by descending only into differing children. */
function differingLeaves(a: DigestTreeLike, b: DigestTreeLike): number[] {
  const out: number[] = []
  const visit = (level: number, index: number): void => {
    if (hex(a.node(level, index)) === hex(b.node(level, index))) return
    if (level === DIGEST_TREE_DEPTH) {
      out.push(index)
      return
    }
    for (let c = 0; c < TREE_FANOUT; c++) visit(level + 1, index * TREE_FANOUT + c)
  }
  visit(0, 0)
  return out
}

describe.each(['yjs', 'automerge', 'columns'] as const)('replication surface on %s', (engine) => {
  it('gives equal digest trees for equal rows and pinpoints the leaf of a differing row', async () => {
    const a = await Shoal.open({ dir: await tempDir() })
    const b = await Shoal.open({ dir: await tempDir() })
    try {
      const events: ChangeEvent[] = []
      a.subscribe((e) => events.push(e))
      await a.defineTable({ name: 'items', primaryKey: 'id', partitionBy: 'shop', engine, columns: { id: 'string', shop: 'string', qty: 'counter' } })
      await Promise.all(Array.from({ length: 300 }, (_, i) => a.table('items').put(`i${i}`, { shop: 'x', qty: i })))
      for (const e of events) await b.applyRemoteDelta(e.table, e.partition, e.key, e.delta, 'a')
      const [ta, tb] = [await a.replication().digestTree('items', 'x'), await b.replication().digestTree('items', 'x')]
      expect(hex(ta.root())).toBe(hex(tb.root()))
      expect((await a.status()).tables[0]!.partitions[0]!.digest).toBe(hex(ta.root()))

      await a.table('items').increment('i42', 'qty', 1)
      const after = await a.replication().digestTree('items', 'x')
      expect(differingLeaves(after, tb)).toEqual([leafOf('i42')])
      const rows = await a.replication().leafRows('items', 'x', [leafOf('i42')])
      expect(rows.map((r) => r.key)).toContain('i42')
      const theirs = new Map((await b.replication().leafRows('items', 'x', [leafOf('i42')])).map((r) => [r.key, hex(r.rowHash)]))
      expect(rows.filter((r) => theirs.get(r.key) !== hex(r.rowHash)).map((r) => r.key)).toEqual(['i42'])
      // Many leaves at once (read in runs, far ones apart): the rows of exactly those leaves,
      // duplicates and empty leaves asked for included.
      const some = [...new Set(Array.from({ length: 300 }, (_, i) => leafOf(`i${i}`)))].sort((x, y) => x - y).filter((_, i) => i % 3 === 0)
      const many = await a.replication().leafRows('items', 'x', [0, ...some, LEAF_COUNT - 1, some[0]!])
      const one = (await Promise.all(some.map((leaf) => a.replication().leafRows('items', 'x', [leaf])))).flat()
      const listed = (list: typeof many): string[] => list.map((r) => `${r.leaf}/${r.key}/${hex(r.rowHash)}`).sort()
      expect(listed(many)).toEqual(listed(one))
      expect(one.length).toBeGreaterThan(50)
      expect(one.every((r) => r.leaf === leafOf(r.key))).toBe(true)
      // Repair by sending the whole row document: the trees become equal again.
      const doc = (await a.replication().encodedRows('items', 'x', ['i42']))[0]!
      await b.applyRemoteDelta('items', 'x', 'i42', doc, 'a')
      expect(hex((await b.replication().digestTree('items', 'x')).root())).toBe(hex(after.root()))
    } finally {
      await a.close()
      await b.close()
    }
  })
})
