import { expect, it } from 'vitest'
import { crashRounds } from './peer-crash.js'

/*
 * kill -9 of a whole running peer, three rounds (`npm run test:crash -- --rounds 20` runs more):
 * `shoal start` on 127.0.0.1 with a temp data folder, several HTTP clients writing at once,
 * SIGKILL after a random number of acknowledged writes, `shoal check` clean after each kill, and
 * every acknowledged write there after each restart (peer-crash.ts).
 */

it('loses no acknowledged write when shoal start is killed with SIGKILL under concurrent HTTP writes', { timeout: 180_000 }, async () => {
  const reports = await crashRounds({ rounds: 3, seed: 7 })
  expect(reports).toHaveLength(4)
  for (const r of reports) {
    expect(r.lost).toEqual([])
    expect(r.check).toMatch(/^ok: \d+ rows, digests and counts consistent$/)
  }
  // Every kill round cut writes in the middle, and the restarts found what was acknowledged before.
  expect(reports.slice(0, 3).every((r) => r.acknowledged > 0)).toBe(true)
  expect(reports[3]!.verified).toBeGreaterThan(reports[0]!.acknowledged)
})
