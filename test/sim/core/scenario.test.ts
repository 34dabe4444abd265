import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { loadScenario, parseScenario, ScenarioError } from '../../../src/sim/core/scenario.js'

describe('scenarios', () => {
  it.each(readdirSync('peers/scenarios').filter((f) => f.endsWith('.yaml')))('ships %s, which validates', async (file) => {
    const s = await loadScenario(`peers/scenarios/${file}`)
    expect(s.name).not.toBe('unnamed')
    expect(s.faults.length).toBeGreaterThan(0)
    expect(s.carries).toHaveLength(s.peers)
  })

  it('fills defaults and expands "halves"', () => {
    const s = parseScenario({ peers: 5, faults: [{ kind: 'partition', groups: 'halves', at: 0, for: 10 }] }, 'x')
    expect(s.faults[0]).toEqual({ kind: 'partition', at: 0, for: 10, groups: [[0, 1], [2, 3, 4]] })
    expect(s.mode).toBe('model')
    expect(s.tables.map((t) => t.name)).toEqual(['catalog', 'stock', 'sales'])
  })

  it('bounds hot keys by keys and expands carries per peer', () => {
    const s = parseScenario({ peers: 3, workload: { keys: 4 }, carries: [{ peers: [1, 2], tables: { stock: ['1'] } }] }, 'x')
    expect(s.workload.hotKeys).toBe(4)
    expect(s.carries).toEqual([{}, { stock: ['1'] }, { stock: ['1'] }])
    expect(parseScenario({ peers: 4, faults: [{ kind: 'swizzle' }] }, 'x').faults[0]).toEqual({ kind: 'swizzle', at: 0, for: null, stepMs: 500, links: 3 })
    // Table names that are also Object.prototype members are carried like any other.
    const odd = { name: 'toString', primaryKey: 'id', columns: { id: 'string' } }
    const carrying = (tables: Record<string, string[]>) => parseScenario({ peers: 2, tables: [odd], carries: [{ peers: [1], tables }] }, 'x').carries
    expect(carrying({})).toEqual([{}, {}])
    expect(carrying({ toString: ['a'] })).toEqual<Array<Record<string, string[]>>>([{}, { toString: ['a'] }])
  })

  it('names the bad field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ peers: 0 }, /'peers' must be an integer from 1/],
      [{ mode: 'fast' }, /'mode' must be "model" or "real"/],
      [{ peers: 4, faults: [{ kind: 'partition', groups: [[0, 1], [1, 2]] }] }, /names peer 1 in two groups/],
      [{ peers: 4, carries: [{ peers: [9], tables: {} }] }, /'carries\[0\]\.peers\[0\]' must be an integer from 0 to 3/],
      [{ workload: { mix: { put: 0 } } }, /needs at least one operation kind/],
      [{ durationMs: 100, faults: [{ kind: 'crash', peer: 0, at: 500 }] }, /'faults\[0\]\.at' must be an integer from 0 to 100/],
      [{ faults: [{ kind: 'delay', minMs: 50, maxMs: 10 }] }, /'faults\[0\]\.maxMs' must be a number from 50/],
      [[], /^x: the scenario must be an object$/],
      [{ peers: 1, faults: [{ kind: 'partition', groups: 'halves' }] }, /^x: 'faults\[0\]\.groups' "halves" needs at least 2 peers$/],
      [{ faults: [{ kind: 'partition', groups: [[0, 1]] }] }, /'faults\[0\]\.groups' must be "halves" or at least two arrays of peer indexes/],
      [{ faults: [{ kind: 'bridge', groups: [[0, 1]], via: 1 }] }, /'faults\[0\]\.groups' must be exactly two arrays of peer indexes/],
      [{ faults: [{ kind: 'loss', rate: 0.1, links: [[0]] }] }, /'faults\[0\]\.links\[0\]' must be a \[peer, peer\] pair/],
      [{ peers: 3, faults: [{ kind: 'loss', rate: 0.1, links: [[0, 3]] }] }, /'faults\[0\]\.links\[0\]\[1\]' must be an integer from 0 to 2 \(got 3\)/],
      [{ faults: [{ kind: 'join', peer: 1, for: 10 }] }, /'faults\[0\]\.for' must be null or absent/],
      [{ faults: [{ kind: 'ring', peer: 1 }] }, /'faults\[0\]\.peer' is not a known field \(allowed: kind, at, for\)/],
      [{ workload: { keys: 3, hotKeys: 5 } }, /'workload\.hotKeys' must be an integer from 0 to 3 \(got 5\)/],
      [{ carries: [{ peers: [0], tables: { nope: [] } }] }, /'carries\[0\]\.tables\.nope' must be one of catalog, stock, sales \(got "nope"\)/],
      [{ tables: [{ name: 't', primaryKey: 'id', columns: { id: 'x' } }] }, /'tables\[0\]\.columns\.id' must be one of string/],
    ]
    for (const [input, message] of bad) {
      expect(() => parseScenario(input, 'x')).toThrow(ScenarioError)
      expect(() => parseScenario(input, 'x')).toThrow(message)
    }
  })

  it('reads a mesh section: groups, rules per table, every peer\'s group and own partitions', () => {
    const mesh = {
      groups: { hq: {}, store: { relay: false } },
      tables: { stock: { write: { hq: '*', store: 'own' }, read: { '*': '*' } } },
      members: [
        { peers: [0], group: 'hq' },
        { peers: [1, 2], group: 'store', partitions: ['1'] },
      ],
    }
    const s = parseScenario({ peers: 3, mesh, workload: { outsideRights: [2, 2] } }, 'x')
    expect(s.mesh).toEqual({
      groups: { hq: { relay: false }, store: { relay: false } },
      tables: { stock: { write: { hq: '*', store: 'own' }, read: { '*': '*' } } },
      otherTables: { write: {}, read: {} },
      members: [
        { group: 'hq', partitions: [] },
        { group: 'store', partitions: ['1'] },
        { group: 'store', partitions: ['1'] },
      ],
    })
    expect(s.workload.outsideRights).toEqual([2])
    expect(parseScenario({ peers: 2 }, 'x').mesh).toBeNull()
    const bad: Array<[unknown, RegExp]> = [
      [{ peers: 3, mesh: { ...mesh, members: [{ peers: [0], group: 'hq' }] } }, /'mesh' every peer must be in exactly one 'members' entry: peer 1, 2 in none/],
      [{ peers: 3, mesh: { ...mesh, members: [...mesh.members, { peers: [2], group: 'hq' }] } }, /peer 2 in more than one/],
      [{ peers: 3, mesh: { ...mesh, members: [{ peers: [0, 1, 2], group: 'nope' }] } }, /member group 'nope' is not declared under 'groups'/],
      [{ peers: 3, mesh: { ...mesh, tables: { stock: { write: { clerk: 'own' } } } } }, /rules grant to group 'clerk', which is not declared/],
      [{ peers: 3, mesh: { ...mesh, tables: { stock: { write: { hq: 'all' } } } } }, /'mesh\.tables\.stock\.write\.hq' must be "\*" \(every partition\) or "own"/],
      [{ peers: 3, mesh: { ...mesh, tables: { stok: {} } } }, /'mesh\.tables\.stok' must be one of catalog, stock, sales/],
      [{ peers: 3, mesh: { ...mesh, groups: { '1hq': {} } } }, /must be a group name: a letter/],
      [{ peers: 3, mesh: { ...mesh, members: [{ peers: [5], group: 'hq' }] } }, /'mesh\.members\[0\]\.peers\[0\]' must be an integer from 0 to 2/],
      [{ peers: 3, workload: { outsideRights: [1] } }, /'workload\.outsideRights' needs a 'mesh' section/],
    ]
    for (const [input, message] of bad) {
      expect(() => parseScenario(input, 'x')).toThrow(ScenarioError)
      expect(() => parseScenario(input, 'x')).toThrow(message)
    }
  })
})
