import { describe, expect, it } from 'vitest'
import { runModel } from '../../../src/sim/model/model-runner.js'
import { randomScenario } from '../../../src/sim/core/random-scenario.js'
import { parseScenario } from '../../../src/sim/core/scenario.js'
import type { EngineCells, EngineDoc, RowEngine } from '../../../src/table/engine.js'
import { engineFor } from '../../../src/table/engines.js'
import type { ResolvedSchema } from '../../../src/table/schema.js'

/*
 * Model mode: seeded schedules of faults and workload over the real merge and anti-entropy code.
 * SHOAL_SIM_SCHEDULES sets how many random schedules run (default 200), SHOAL_SIM_SEED the first.
 */

const SCHEDULES = Number(process.env.SHOAL_SIM_SCHEDULES ?? 200)
const FIRST_SEED = Number(process.env.SHOAL_SIM_SEED ?? 1)

describe('model-mode simulation', () => {
  it(`${SCHEDULES} random schedules (3–7 peers, every fault kind) converge with no lost write`, async () => {
    const failures: string[] = []
    let ops = 0
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SCHEDULES; seed++) {
      const summary = await runModel(randomScenario(seed), { replay: `shoal sim --random --seed ${seed}` })
      ops += summary.ops.acknowledged
      if (!summary.ok) failures.push(`seed ${seed}: ${summary.violations.slice(0, 3).join('; ')} — replay: ${summary.replay}`)
    }
    console.log(`model schedules: seeds ${FIRST_SEED}…${FIRST_SEED + SCHEDULES - 1}, ${ops} acknowledged operations, ${failures.length} failed`)
    expect(failures).toEqual([])
  }, 300_000)

  it('replays exactly: the same seed gives the same event trace, another seed another', async () => {
    const a = await runModel(randomScenario(77))
    const b = await runModel(randomScenario(77))
    const c = await runModel(randomScenario(78))
    expect(a.traceHash).toBe(b.traceHash)
    expect(a.series.divergence).toEqual(b.series.divergence)
    expect(a.traceHash).not.toBe(c.traceHash)
  })

  it('measures convergence after a long partition heals, and shades the fault', async () => {
    const scenario = parseScenario(
      {
        name: 'split',
        peers: 6,
        seed: 5,
        durationMs: 6_000,
        faults: [{ kind: 'partition', at: 1_000, for: 5_000, groups: [[0, 1, 2], [3, 4, 5]] }],
        workload: { opsPerSecond: 60, keys: 30, hotKeys: 5 },
        antiEntropy: { intervalMs: 1_000 },
        sampleMs: 100,
      },
      'test',
    )
    const s = await runModel(scenario)
    expect(s.violations).toEqual([])
    expect(s.healedAt).toBe(6_000)
    expect(s.timeToConvergeMs).toBeGreaterThan(0)
    expect(s.faults).toEqual([{ kind: 'partition', from: 1_000, to: 6_000, detail: '0,1,2 | 3,4,5' }])
    // Divergence grows during the split and is zero at the end for everyone.
    const peak = Math.max(...s.series.divergence.flat().map((d) => d ?? 0))
    expect(peak).toBeGreaterThan(3)
    for (const line of s.series.divergence) expect(line.at(-1)).toBe(0)
    expect(s.traffic.syncMessages).toBeGreaterThan(0)
  })

  it('respects partial replication: a store peer holds only its own partitions', async () => {
    const s = await runModel(
      parseScenario({ name: 'partial', peers: 4, seed: 9, durationMs: 3_000, carries: [{ peers: [1], tables: { stock: ['1'], sales: ['1'] } }], faults: [{ kind: 'isolate', at: 500, for: 1_500, peer: 1 }] }, 'test'),
    )
    expect(s.violations).toEqual([])
    expect(s.ok).toBe(true)
  })
})

/**
 * A deliberately broken counter: increments are stored as a last-writer-wins register holding
 * the total, so concurrent increments on two replicas lose one of them. The checker must catch it.
 */
function lwwCounterEngine(inner: RowEngine): RowEngine {
  const wrap = (doc: EngineDoc): EngineDoc => {
    const read = (life: number): EngineCells => {
      const cells = doc.read(life)
      const registers = new Map<string, unknown>()
      const counters = new Map(cells.counters)
      for (const [k, v] of cells.registers) {
        if (k.startsWith('__total_')) counters.set(k.slice(8), v as number)
        else registers.set(k, v)
      }
      return { registers, counters, texts: cells.texts }
    }
    return {
      causalLength: () => doc.causalLength(),
      read,
      lives: () => doc.lives(),
      conflicts: (life) => doc.conflicts(life),
      textLength: (life, column) => doc.textLength(life, column),
      change: (writes) =>
        doc.change((w) =>
          writes({
            setCausalLength: (l) => w.setCausalLength(l),
            setRegister: (life, column, value) => w.setRegister(life, column, value),
            spliceText: (life, column, index, del, insert) => w.spliceText(life, column, index, del, insert),
            increment: (life, column, by) => w.setRegister(life, `__total_${column}`, (read(life).counters.get(column) ?? 0) + by),
          }),
        ),
      applyDelta: (delta) => doc.applyDelta(delta),
      holdsAll: () => false,
      version: () => doc.version(),
      deltaSince: (v) => doc.deltaSince(v),
      encode: () => doc.encode(),
      canonicalState: () => doc.canonicalState(),
      dispose: () => doc.dispose(),
    }
  }
  return { name: inner.name, checkAuthor: (delta, actor) => inner.checkAuthor(delta, actor), create: (ctx) => wrap(inner.create(ctx)), decode: (bytes, ctx) => wrap(inner.decode(bytes, ctx)) }
}

describe('the checker catches a broken merge', () => {
  it('finds lost increments when counters merge last-writer-wins', async () => {
    const broken = (name: ResolvedSchema['engine']): RowEngine => (name === 'yjs' ? lwwCounterEngine(engineFor('yjs')) : engineFor(name))
    const scenario = parseScenario(
      {
        name: 'broken-counter',
        peers: 3,
        seed: 3,
        durationMs: 3_000,
        workload: { opsPerSecond: 80, keys: 3, hotKeys: 2, hotFraction: 0.9, mix: { put: 1, increment: 10 } },
        faults: [{ kind: 'partition', at: 500, for: 2_000, groups: [[0], [1, 2]] }],
      },
      'test',
    )
    const healthy = await runModel(scenario)
    expect(healthy.violations).toEqual([])
    const s = await runModel(scenario, { engineFor: broken })
    expect(s.ok).toBe(false)
    expect(s.violations.some((v) => /counter qty is \d+, below the \d+ acknowledged/.test(v))).toBe(true)
  })
})
