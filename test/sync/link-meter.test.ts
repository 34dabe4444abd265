import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FIRST_PAGE_BYTES, LinkMeter, MAX_PAGE_BYTES, MIN_PAGE_BYTES, MIN_SAMPLE_BYTES, PAGE_TARGET_MS } from '../../src/sync/link-meter.js'

describe('LinkMeter: pages sized to the link', () => {
  it('asks for a first page before anything is measured', () => {
    const meter = new LinkMeter()
    expect(meter.bytesPerSecond()).toBeNull()
    expect(meter.pageBytes()).toBe(FIRST_PAGE_BYTES)
  })

  it('sizes pages to PAGE_TARGET_MS of a slow link, and to the cap on a fast one', () => {
    const slow = new LinkMeter()
    // 32 KB/s (a 256 kbit/s link): 64 KiB answers take 2.048 s.
    for (let i = 0; i < 10; i++) slow.observe(64 * 1024, 2048)
    expect(slow.bytesPerSecond()).toBeCloseTo(32_000, 0)
    expect(slow.pageBytes()).toBe(Math.round((32_000 * PAGE_TARGET_MS) / 1000))
    const fast = new LinkMeter()
    fast.observe(256 * 1024, 5)
    expect(fast.pageBytes()).toBe(MAX_PAGE_BYTES)
  })

  it('follows a link that slows down, and one that recovers', () => {
    const meter = new LinkMeter()
    for (let i = 0; i < 5; i++) meter.observe(256 * 1024, 10)
    expect(meter.pageBytes()).toBe(MAX_PAGE_BYTES)
    for (let i = 0; i < 40; i++) meter.observe(16 * 1024, 4000)
    expect(meter.pageBytes()).toBe(MIN_PAGE_BYTES)
    for (let i = 0; i < 20; i++) meter.observe(128 * 1024, 1000)
    expect(meter.pageBytes()).toBeGreaterThan(60 * 1024)
  })

  it('ignores answers too small to measure and figures that are not numbers', () => {
    const meter = new LinkMeter()
    meter.observe(MIN_SAMPLE_BYTES - 1, 10_000)
    meter.observe(Number.NaN, 10)
    meter.observe(64 * 1024, Number.NaN)
    meter.observe(64 * 1024, -1)
    meter.observe(Number.POSITIVE_INFINITY, 1)
    expect(meter.bytesPerSecond()).toBeNull()
    meter.observe(64 * 1024, 0)
    expect(meter.pageBytes()).toBe(MAX_PAGE_BYTES)
  })

  it('always asks for a page within [MIN_PAGE_BYTES, MAX_PAGE_BYTES], whatever it measured', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double(), fc.double()), { maxLength: 50 }), (samples) => {
        const meter = new LinkMeter()
        for (const [bytes, ms] of samples) meter.observe(bytes, ms)
        const page = meter.pageBytes()
        expect(Number.isInteger(page)).toBe(true)
        expect(page).toBeGreaterThanOrEqual(MIN_PAGE_BYTES)
        expect(page).toBeLessThanOrEqual(Math.max(MAX_PAGE_BYTES, FIRST_PAGE_BYTES))
      }),
    )
  })
})
