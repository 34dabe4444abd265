/* The workloads w1–w6, run group by group (pair, five, steady) against one system's adapter. */
import { sleep } from '../lib/poll.js'
import { median } from '../lib/stats.js'
import { wireTotal } from '../lib/wire.js'
import { canonical, sameRows, type StockRow, type SystemAdapter } from './adapter.js'
import { DEADLINE_MS, HOT, N, STEADY_DEADLINE_MS, STEADY_ROWS, STEADY_SECONDS, type Group, type WorkloadId } from './config.js'
import { applyChanges, everyRowOnce, idOf, makeChanges, makeRows, plausibleAfterConcurrent, stepFor } from './data.js'
import { counts, DnfError, finalAgainst, measure, progress, reaches, type Outcome, type WorkloadResult } from './measure.js'

export async function runGroup(a: SystemAdapter, group: Group, results: Partial<Record<WorkloadId, Outcome>>): Promise<void> {
  const run = async (w: WorkloadId, body: () => Promise<WorkloadResult>): Promise<void> => {
    progress(`${w} start`)
    try {
      results[w] = await body()
    } catch (error) {
      // A system that throws (a failed write, a crashed peer) did not finish this workload either.
      const message = error instanceof DnfError ? error.message : `failed: ${error instanceof Error ? error.message : String(error)}`
      results[w] = { dnf: message }
      progress(`${w} dnf ${message}`)
      throw error instanceof DnfError ? error : new DnfError(message, { cause: error })
    }
    progress(`${w} done ${(results[w] as WorkloadResult).converge_ms.toFixed(0)}`)
  }
  const rows = makeRows(group === 'steady' ? STEADY_ROWS : N)
  const all = group === 'five' ? [1, 2, 3, 4] : [1]
  const insertsThenUpdates = async (wi: WorkloadId, wu: WorkloadId): Promise<StockRow[]> => {
    await run(wi, () =>
      measure(a, `${rows.length} rows on ${all.length} peer(s)`, group === 'steady' ? STEADY_DEADLINE_MS : DEADLINE_MS, () => a.insert(0, rows), reaches(a, 0, all, rows), finalAgainst(a, [0, ...all], rows), counts(a, [0, ...all])),
    )
    if (group === 'steady') return rows
    const changes = makeChanges(N, everyRowOnce(N), 1000, 'B')
    const expected = applyChanges(rows, changes)
    await run(wu, () =>
      measure(a, `${N} updates on ${all.length} peer(s)`, DEADLINE_MS, () => a.update(0, changes), reaches(a, 0, all, expected), finalAgainst(a, [0, ...all], expected), counts(a, [0, ...all])),
    )
    return expected
  }

  if (group === 'five') {
    await insertsThenUpdates('w3i', 'w3u')
    return
  }
  if (group === 'steady') {
    await insertsThenUpdates('w6', 'w6')
    const result = results.w6 as WorkloadResult
    // Settle (acks, pending anti-entropy) before measuring the idle rate.
    await sleep(2000)
    const windows: number[] = []
    const windowMs = (STEADY_SECONDS * 1000) / 3
    for (let i = 0; i < 3; i++) {
      const b0 = wireTotal()
      await sleep(windowMs)
      windows.push(wireTotal() - b0)
      progress(`w6 window ${i + 1}/3 ${windows[i]} B`)
    }
    const perMin = median(windows) * (60_000 / windowMs)
    const still = await finalAgainst(a, [0, 1], rows)()
    results.w6 = { ...result, steady_bytes_per_min: perMin, steady_windows_bytes: windows, equal: result.equal && still.equal, expected: result.expected && still.expected }
    return
  }

  let state = await insertsThenUpdates('w1', 'w2')

  // w4: both peers write the same hot rows at once.
  const hotStep = stepFor(N, 104_729)
  const hot = Array.from({ length: HOT }, (_, j) => idOf((j * hotStep) % N))
  const fromA = makeChanges(Math.floor(N / 2), (i) => hot[(i * 31) % HOT]!, 20_000, 'H')
  const fromB = makeChanges(Math.floor(N / 2), (i) => hot[(i * 37 + 5) % HOT]!, 40_000, 'K')
  const base = state
  let merged: StockRow[] = []
  await run('w4', () =>
    measure(
      a,
      'A and B equal after concurrent updates',
      DEADLINE_MS,
      async () => {
        await Promise.all([a.update(0, fromA), a.update(1, fromB)])
      },
      async (committed, times) => {
        if (a.fingerprint !== undefined) {
          if (!committed) return false
          if ((await a.fingerprint(0)) !== (await a.fingerprint(1))) return false
        } else if (!committed) return false
        const s = performance.now()
        const [sa, sb] = await Promise.all([a.snapshot(0), a.snapshot(1)])
        times.push(performance.now() - s)
        if (!sameRows(sa, sb)) return false
        merged = canonical(sa)
        return true
      },
      async () => {
        const [sa, sb] = await Promise.all([a.snapshot(0), a.snapshot(1)])
        return { equal: sameRows(sa, sb), expected: plausibleAfterConcurrent(base, [fromA, fromB], canonical(sa)) }
      },
      counts(a, [0, 1]),
    ),
  )
  state = merged

  // w5: B offline while A changes every row, then B restarts from its own storage.
  const offline = makeChanges(N, everyRowOnce(N), 60_000, 'C')
  const expected = applyChanges(state, offline)
  let restartMs = NaN
  await run('w5', async () => {
    await a.stopPeer(1)
    const tw = performance.now()
    await a.update(0, offline)
    progress(`w5 offline writes committed in ${(performance.now() - tw).toFixed(0)} ms`)
    const catchUp = reaches(a, 0, [1], expected)
    const r = await measure(
      a,
      `peer B catching up on ${N} updates`,
      DEADLINE_MS,
      async () => {
        const t = performance.now()
        await a.startPeer(1)
        restartMs = performance.now() - t
      },
      // B exists again only once startPeer has resolved.
      async (restarted, times) => restarted && catchUp(restarted, times),
      finalAgainst(a, [0, 1], expected),
      counts(a, [0, 1]),
    )
    return { ...r, restart_ms: restartMs }
  })
}
