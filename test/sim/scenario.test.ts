import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { loadScenario, parseScenario, ScenarioError } from '../../src/sim/scenario.js'

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

  it('names the bad field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ peers: 0 }, /'peers' must be an integer from 1/],
      [{ mode: 'fast' }, /'mode' must be "model" or "real"/],
      [{ peers: 4, faults: [{ kind: 'partition', groups: [[0, 1], [1, 2]] }] }, /names peer 1 in two groups/],
      [{ peers: 4, carries: [{ peers: [9], tables: {} }] }, /'carries\[0\]\.peers\[0\]' must be an integer from 0 to 3/],
      [{ workload: { mix: { put: 0 } } }, /needs at least one operation kind/],
      [{ durationMs: 100, faults: [{ kind: 'crash', peer: 0, at: 500 }] }, /'faults\[0\]\.at' must be an integer from 0 to 100/],
      [{ faults: [{ kind: 'delay', minMs: 50, maxMs: 10 }] }, /'faults\[0\]\.maxMs' must be a number from 50/],
    ]
    for (const [input, message] of bad) {
      expect(() => parseScenario(input, 'x')).toThrow(ScenarioError)
      expect(() => parseScenario(input, 'x')).toThrow(message)
    }
  })
})
