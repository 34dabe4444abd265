import { describe, expect, it } from 'vitest'
import { formatDuration, formatLoad } from '../../src/cli/format.js'
import { LoadProgressView } from '../../src/cli/progress.js'
import type { LoadProgress } from '../../src/status.js'

const FROM = '12D3KooWAbcdefghijklmnop'
const load = (received: number, expected = 100_000): LoadProgress => ({ table: 'stock', partition: '1', from: FROM, received, expected })

function recorder(isTTY: boolean): { out: { isTTY: boolean; write: (t: string) => void }; text: () => string } {
  let text = ''
  return { out: { isTTY, write: (t: string) => void (text += t) }, text: () => text }
}

describe('load progress', () => {
  it('draws a bar with percentage, counts and source', () => {
    expect(formatLoad(load(52_000))).toBe('[##########..........] 52% 52,000/100,000 rows stock/1 from 12D3…klmnop')
    // Deleted rows arrive too, so received may pass expected: the bar stops at 100%.
    expect(formatLoad(load(120, 100))).toBe('[####################] 100% 120/100 rows stock/1 from 12D3…klmnop')
    expect(formatLoad({ ...load(7, 0), partition: '' })).toBe('[....................] 7 rows stock from 12D3…klmnop')
    expect(formatLoad({ ...load(52_000), etaSeconds: 185 })).toBe('[##########..........] 52% 52,000/100,000 rows stock/1 from 12D3…klmnop, 3 min 05 s left')
    expect(formatDuration(45)).toBe('45 s')
    expect(formatDuration(7800)).toBe('2 h 10 min')
  })

  it('prints a line per load at most every interval when not on a terminal, and one when it ends', () => {
    let now = 0
    const { out, text } = recorder(false)
    const view = new LoadProgressView(out, { lineIntervalMs: 5000, now: () => now })
    view.update(load(1000))
    now = 1000
    view.update(load(2000))
    now = 6000
    view.update(load(60_000))
    now = 7000
    view.update(load(100_000))
    view.settle([load(100_000)])
    view.update({ ...load(100_000), done: true })
    view.settle([])
    expect(text().split('\n')).toEqual([
      formatLoad(load(1000)),
      formatLoad(load(60_000)),
      'loaded 100,000 rows of stock/1 from 12D3…klmnop',
      '',
    ])
  })

  it('redraws one bar in place on a terminal and clears it before the closing line', () => {
    let now = 0
    const { out, text } = recorder(true)
    const view = new LoadProgressView(out, { redrawIntervalMs: 100, now: () => now })
    view.update(load(10))
    now = 50
    view.update(load(20))
    now = 200
    view.update(load(30))
    view.update({ ...load(30), done: true })
    expect(text()).toBe(`\r\x1b[K${formatLoad(load(10))}\r\x1b[K${formatLoad(load(30))}\r\x1b[Kloaded 30 rows of stock/1 from 12D3…klmnop\n`)
  })

  it('picks up loads it only sees in the status, and says when one ends without finishing', () => {
    const { out, text } = recorder(false)
    const view = new LoadProgressView(out)
    view.settle([load(5)])
    view.settle([])
    expect(text()).toBe(`${formatLoad(load(5))}\nload of stock/1 from 12D3…klmnop ended after 5 rows\n`)
  })

  it('keeps quiet about small repairs', () => {
    const { out, text } = recorder(false)
    const view = new LoadProgressView(out, { minRows: 1000 })
    view.update(load(3, 3))
    view.update({ ...load(3, 3), done: true })
    expect(text()).toBe('')
  })
})
