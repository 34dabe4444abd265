import { expect, it } from 'vitest'
import { runTarget, shares } from '../../fuzz/harness.js'
import { TARGETS } from '../../fuzz/targets/index.js'

/*
 * A seeded slice of `npm run fuzz` (fuzz/): 10^4 inputs over every target (sync frames and the
 * responder, gossip into a real replicator, Yjs and Automerge deltas into a LevelDB store, scenario
 * and config files, raw requests to a running HTTP API). No input may crash or hang, and no input
 * that was refused may change a stored row or digest. The targets run side by side, as most of
 * their time is spent waiting on LevelDB and sockets.
 */

const INPUTS = 10_000
const SEED = 20_261_130

it('survives a seeded slice of 10^4 fuzz inputs across all targets: no crash, no hang, nothing stored changed', { timeout: 120_000 }, async () => {
  const counts = shares(TARGETS, INPUTS)
  const results = await Promise.all(TARGETS.map((target, i) => runTarget(target, { inputs: counts[i]!, seed: SEED, batch: 250 })))
  const summary = results.map((r) => ({ target: r.target, inputs: r.inputs, crashes: r.crashes, hangs: r.hangs, storedChanged: r.storedChanged, findings: r.findings.slice(0, 3) }))
  expect(results.reduce((s, r) => s + r.inputs, 0)).toBe(INPUTS)
  for (const r of summary) expect(r, JSON.stringify(r.findings, null, 2)).toMatchObject({ crashes: 0, hangs: 0, storedChanged: 0 })
  // The slice reaches past the first checks: every target accepted some inputs and refused others.
  for (const r of results) {
    expect(r.refused, r.target).toBeGreaterThan(0)
    expect(r.changed + r.unchanged, r.target).toBeGreaterThan(0)
  }
  // Targets with a store compared it after refused inputs.
  for (const r of results.filter((r) => ['sync-frames', 'gossip', 'yjs-deltas', 'automerge-deltas', 'http'].includes(r.target))) {
    expect(r.verifiedInputs, r.target).toBeGreaterThan(0)
    expect(r.verifiedFull, r.target).toBeGreaterThan(0)
  }
})
