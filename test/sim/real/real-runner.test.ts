import { describe, expect, it } from 'vitest'
import { runReal } from '../../../src/sim/real/real-runner.js'
import { loadScenario, parseScenario, ScenarioError } from '../../../src/sim/core/scenario.js'
import type { SimSummary } from '../../../src/sim/core/summary.js'

/*
 * Real-stack mode: real peers (LevelDB stores in temp folders, libp2p over the in-process memory
 * transport, gossip and anti-entropy) under a short workload and faults, judged by the same checker
 * as model mode. No network address is used at all. Assertions are about outcomes, never speed.
 */

const SHORT = { durationMs: 3_000, settleMs: 30_000, sampleMs: 200, workload: { opsPerSecond: 15, keys: 20, hotKeys: 4 }, antiEntropy: { intervalMs: 1_000 } }

async function run(spec: Record<string, unknown>): Promise<{ summary: SimSummary; logs: string[] }> {
  const logs: string[] = []
  const summary = await runReal(parseScenario({ ...SHORT, ...spec }, 'test'), { log: (m) => logs.push(m) })
  return { summary, logs }
}

function expectHealthy(s: SimSummary): void {
  expect(s.violations).toEqual([])
  expect(s.ok).toBe(true)
  expect(s.mode).toBe('real')
  expect(s.traceHash).toBeNull()
  expect(s.convergedAt).not.toBeNull()
  expect(s.ops.acknowledged).toBeGreaterThan(0)
  expect(s.series.divergence).toHaveLength(s.peers)
  for (const line of s.series.divergence) {
    expect(line).toHaveLength(s.series.t.length)
    expect(line.at(-1)).toBe(0)
  }
}

describe('real-stack simulation', () => {
  it('three peers through a partition and a crash-restart converge with no lost write', async () => {
    const { summary: s } = await run({
      name: 'split-and-crash',
      peers: 3,
      seed: 11,
      faults: [
        { kind: 'partition', at: 300, for: 1_200, groups: [[0], [1, 2]] },
        { kind: 'crash', at: 1_000, for: 1_000, peer: 2 },
      ],
    })
    expectHealthy(s)
    expect(s.faults.map((f) => [f.kind, f.from, f.to])).toEqual([
      ['partition', 300, 1_500],
      ['crash', 1_000, 2_000],
    ])
    // The crash took effect: p2 was down (null) for some samples, the others never.
    expect(s.series.divergence[2]!.some((d) => d === null)).toBe(true)
    expect(s.series.divergence[0]!.every((d) => d !== null)).toBe(true)
    expect(s.traffic.gossipMessages).toBeGreaterThan(0)
    expect(s.traffic.syncMessages).toBeGreaterThan(0)
    expect(s.traffic.messages).toBe(s.traffic.gossipMessages + s.traffic.syncMessages)
  }, 60_000)

  it('a peer joining late with an empty store receives everything', async () => {
    const { summary: s } = await run({ name: 'late-join', peers: 3, seed: 12, faults: [{ kind: 'join', at: 2_000, peer: 2 }] })
    expectHealthy(s)
    // Absent until it joined, then it caught up with every row written before.
    const line = s.series.divergence[2]!
    expect(line[0]).toBeNull()
    expect(line.some((d) => d !== null && d > 0)).toBe(true)
    expect(s.faults).toEqual([{ kind: 'join', from: 2_000, to: null, detail: 'peer 2' }])
  }, 60_000)

  it('respects partial replication; faults it cannot inject are reported as such', async () => {
    const { summary: s } = await run({
      name: 'partial',
      peers: 3,
      seed: 13,
      carries: [{ peers: [1], tables: { stock: ['1'], sales: ['1'] } }],
      faults: [
        { kind: 'isolate', at: 500, for: 1_000, peer: 1 },
        { kind: 'delay', at: 0, for: 1_000, minMs: 5, maxMs: 50 },
        { kind: 'skew', at: 0, for: 1_000, peer: 0, ms: 500 },
      ],
    })
    // The checker fails the run if p1 holds a partition it does not carry.
    expectHealthy(s)
    expect(s.faults.find((f) => f.kind === 'delay')!.detail).toMatch(/not injected in real-stack mode/)
    expect(s.faults.find((f) => f.kind === 'skew')!.detail).toMatch(/no effect in real-stack mode/)
  }, 60_000)

  it('says roles are modelled only in model mode, before starting anything', async () => {
    const scenario = { ...(await loadScenario('peers/scenarios/roles.yaml')), mode: 'real' as const }
    await expect(runReal(scenario)).rejects.toThrow(ScenarioError)
    await expect(runReal(scenario)).rejects.toThrow(/scenario 'roles' has a 'mesh' section: roles are modelled only in model mode for now/)
  })
})
