import { describe, expect, it } from 'vitest'
import type { PeerFinal } from '../../../src/sim/core/checker.js'
import { loadScenario, type Scenario } from '../../../src/sim/core/scenario.js'
import type { HistoryOp } from '../../../src/sim/core/workload.js'
import { runModel } from '../../../src/sim/model/model-runner.js'

/*
 * Roles in model mode (peers/scenarios/roles.yaml): peer 4 writes outside its rights; every other
 * peer must refuse those writes on every path, and the checker must prove it — and must fail the
 * run when peers are made to accept them, so the property is known to bite.
 */

interface Run {
  history: readonly HistoryOp[]
  finals: readonly PeerFinal[]
}

/** Whether a peer holds a value or token only this write wrote (the workload makes each unique). */
function holdsWriteOf(f: PeerFinal, o: HistoryOp): boolean {
  const state = f.rows.get(`${o.table}/${o.partition}/${o.key}`)
  if (state === undefined) return false
  if (o.kind === 'text') return typeof state.values[o.column!] === 'string' && (state.values[o.column!] as string).includes(o.token!)
  return Object.entries(o.values ?? {}).some(([column, value]) => column !== 'store' && JSON.stringify(state.values[column]) === JSON.stringify(value))
}

/** Where each forbidden put, update or text edit is held: peer indexes. */
function holdersOfForbidden(run: Run): Map<number, number[]> {
  const out = new Map<number, number[]>()
  for (const o of run.history.filter((h) => h.forbidden === true && h.status === 'ok' && (h.kind === 'put' || h.kind === 'update' || h.kind === 'text'))) {
    out.set(o.id, run.finals.filter((f) => holdsWriteOf(f, o)).map((f) => f.peer))
  }
  return out
}

async function run(scenario: Scenario, enforceRoles = true): Promise<{ summary: Awaited<ReturnType<typeof runModel>>; run: Run }> {
  let seen: Run | undefined
  const summary = await runModel(scenario, { enforceRoles, inspect: (r) => (seen = r) })
  return { summary, run: seen! }
}

describe('roles in model mode', () => {
  it('a peer writing outside its rights: its writes never appear elsewhere, and the checker passes', async () => {
    const scenario = await loadScenario('peers/scenarios/roles.yaml')
    const { summary: s, run: r } = await run(scenario)
    expect(s.violations).toEqual([])
    expect(s.ok).toBe(true)
    expect(s.convergedAt).not.toBeNull()
    // The rogue did write outside its rights (locally acknowledged), and others refused it.
    expect(s.roles!.forbiddenWrites).toBeGreaterThan(5)
    expect(s.roles!.acknowledgedForbidden).toBe(s.roles!.forbiddenWrites)
    expect(s.roles!.refusals).toBeGreaterThan(0)
    expect(s.roles!.enforced).toBe(true)
    expect(r.history.filter((o) => o.forbidden === true).every((o) => o.peer === 4)).toBe(true)
    // Every forbidden value or token is held by its author alone (and the author does hold them).
    const holders = holdersOfForbidden(r)
    expect(holders.size).toBeGreaterThan(0)
    for (const [id, peers] of holders) expect(peers, `forbidden write #${id}`).toEqual(peers.length === 0 ? [] : [4])
    expect([...holders.values()].some((peers) => peers.includes(4))).toBe(true)
    // The allowed writes of the other peers did reach the rogue (it is refused, not cut off).
    const allowed = r.history.filter((o) => o.forbidden !== true && o.status === 'ok' && o.peer !== 4 && o.kind === 'put' && o.table === 'catalog')
    expect(allowed.length).toBeGreaterThan(0)
    expect(allowed.some((o) => holdsWriteOf(r.finals[4]!, o))).toBe(true)
  }, 120_000)

  it('refuses them on the anti-entropy path too: a rogue cut off while it writes', async () => {
    // Peer 4 is isolated for the whole workload, so its gossip is lost: its changes can leave it
    // only by anti-entropy after the heal.
    const base = await loadScenario('peers/scenarios/roles.yaml')
    const scenario: Scenario = { ...base, name: 'roles-isolated', faults: [{ kind: 'isolate', at: 0, for: null, peer: 4 }] }
    const { summary: s, run: r } = await run(scenario)
    expect(s.violations).toEqual([])
    expect(s.roles!.forbiddenWrites).toBeGreaterThan(5)
    expect(s.roles!.refusals).toBeGreaterThan(0)
    for (const [id, peers] of holdersOfForbidden(r)) expect(peers, `forbidden write #${id}`).toEqual(peers.length === 0 ? [] : [4])
    // Its allowed writes (stock and sales of its own store 2) did get out by anti-entropy.
    const own = r.history.filter((o) => o.peer === 4 && o.forbidden !== true && o.status === 'ok' && (o.kind === 'put' || o.kind === 'update' || o.kind === 'text'))
    expect(own.length).toBeGreaterThan(0)
    expect(own.some((o) => holdsWriteOf(r.finals[2]!, o))).toBe(true)
  }, 120_000)

  it('the checker fails the run when peers accept writes made outside their author\'s rights', async () => {
    const { summary: s, run: r } = await run(await loadScenario('peers/scenarios/roles.yaml'), false)
    expect(s.ok).toBe(false)
    expect(s.roles!.enforced).toBe(false)
    expect(s.roles!.refusals).toBe(0)
    expect(s.violations.some((v) => /^p[0-3] holds (put|update|text) #\d+ of p4 on .*, which p4 may not write/.test(v))).toBe(true)
    // The forbidden writes did spread: other peers hold them.
    expect([...holdersOfForbidden(r).values()].some((peers) => peers.some((p) => p !== 4))).toBe(true)
  }, 120_000)

  it('replays exactly: keys and signatures are derived from the seed', async () => {
    const scenario = await loadScenario('peers/scenarios/roles.yaml')
    const short: Scenario = { ...scenario, durationMs: 3_000, faults: [] }
    const [a, b] = [await runModel(short), await runModel(short)]
    expect(a.traceHash).toBe(b.traceHash)
    expect(a.roles).toEqual(b.roles)
  }, 120_000)
})
