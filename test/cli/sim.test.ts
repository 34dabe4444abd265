import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tempdir.js'
import { CHILD_PROCESSES_TIMEOUT_MS, runToEnd } from '../helpers/cli.js'

describe('shoal sim', () => {
  it('runs a shipped scenario, prints the result and writes the summary and the report', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const out = join(await tempDir(), 'run')
    const r = await runToEnd(['sim', '--scenario', 'peers/scenarios/new-store-joins-busy-mesh.yaml', '--duration', '20000', '--out', out])
    expect(r.stderr).toMatch(/new-store-joins-busy-mesh: 100% checking/)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/result\s+OK: converged, no lost acknowledged write/)
    expect(r.stdout).toMatch(/trace\s+[0-9a-f]{64}/)
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { ok: boolean; seed: number; series: { peers: string[] } }
    expect(summary).toMatchObject({ ok: true, seed: 17 })
    expect(summary.series.peers).toHaveLength(6)
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/i)
  })

  it('replays a random schedule from its seed: same trace', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const dir = await tempDir()
    const runs = await Promise.all([1, 2].map((i) => runToEnd(['sim', '--random', '--seed', '42', '--json', '--out', join(dir, String(i))])))
    const [a, b] = runs.map((r) => JSON.parse(r.stdout) as { traceHash: string; ok: boolean })
    expect(a!.ok).toBe(true)
    expect(a!.traceHash).toBe(b!.traceHash)
  })

  it('names the bad field of a scenario and exits 2', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const dir = await tempDir()
    const cases: Array<[string, string, RegExp]> = [
      ['bad.yaml', 'peers: 3\nfaults:\n  - { kind: isolate, peer: 7, at: 0 }\n', /bad\.yaml: 'faults\[0\]\.peer' must be an integer from 0 to 2 \(got 7\)/],
      ['bad2.yaml', 'peers: 3\nfaults:\n  - { kind: meteor }\n', /'faults\[0\]\.kind' must be one of partition, isolate/],
      ['bad3.json', '{"peers": 3, "workload": {"opsPerSecnd": 5}}', /'workload\.opsPerSecnd' is not a known field/],
      ['bad4.yaml', 'peers: [3\n', /bad4\.yaml: not valid YAML/],
    ]
    for (const [name, text, message] of cases) {
      await writeFile(join(dir, name), text)
      const r = await runToEnd(['sim', '--scenario', join(dir, name), '--out', join(dir, 'out')])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(message)
    }
    const missing = await runToEnd(['sim', '--scenario', join(dir, 'nope.yaml')])
    expect(missing.stderr).toMatch(/cannot read scenario file .*nope\.yaml': no such file/)
    expect(existsSync(join(dir, 'out'))).toBe(false)
  })

  it('runs the roles scenario in model mode, prints the refusals; refuses it in real mode', { timeout: CHILD_PROCESSES_TIMEOUT_MS }, async () => {
    const dir = await tempDir()
    const r = await runToEnd(['sim', '--scenario', 'peers/scenarios/roles.yaml', '--out', join(dir, 'model')])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/roles\s+\d+ writes outside their author's rights, [1-9]\d* deliveries of them refused by other peers/)
    const summary = JSON.parse(readFileSync(join(dir, 'model', 'summary.json'), 'utf8')) as { ok: boolean; roles: { refusals: number } }
    expect(summary.ok).toBe(true)
    expect(summary.roles.refusals).toBeGreaterThan(0)
    expect(readFileSync(join(dir, 'model', 'report.html'), 'utf8')).toMatch(/deliveries refused/)
    const real = await runToEnd(['sim', '--scenario', 'peers/scenarios/roles.yaml', '--mode', 'real', '--out', join(dir, 'real')])
    expect(real.code).toBe(2)
    expect(real.stderr).toMatch(/roles are modelled only in model mode for now/)
    expect(existsSync(join(dir, 'real'))).toBe(false)
  })
})
