import { describe, expect, it } from 'vitest'
import { etaSeconds } from '../../src/peer/sync-service.js'

describe('load ETA', () => {
  it('is the rest of the load at its rate so far, once a second of it has been seen', () => {
    // 2,000 of 10,000 rows in 4 s: 8,000 more at 500 rows/s.
    expect(etaSeconds(2000, 10_000, 4000)).toBe(16)
    expect(etaSeconds(1, 3, 1000)).toBe(2)
    expect(etaSeconds(2000, 10_000, 999)).toBeNull()
    expect(etaSeconds(0, 10_000, 5000)).toBeNull()
    // Deleted rows arrive too: past the expected count there is nothing left to tell.
    expect(etaSeconds(12_000, 10_000, 5000)).toBeNull()
  })
})
