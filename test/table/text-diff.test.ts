import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_TEXT_DIFF_CHARS, TEXT_DIFF_WORK, textSplices, type TextSplice } from '../../src/table/text-diff.js'

const RUNS = Number(process.env.SHOAL_FC_RUNS ?? 200)
const SEED = process.env.SHOAL_FC_SEED === undefined ? undefined : Number(process.env.SHOAL_FC_SEED)
const params = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) }

function applySplices(text: string, splices: readonly TextSplice[]): string {
  let out = text
  for (const s of splices) {
    expect(s.index).toBeGreaterThanOrEqual(0)
    expect(s.index + s.delete).toBeLessThanOrEqual(out.length)
    out = out.slice(0, s.index) + s.insert + out.slice(s.index + s.delete)
  }
  return out
}

const changed = (splices: readonly TextSplice[]): number => splices.reduce((n, s) => n + s.delete + s.insert.length, 0)

/** True when a string holds a surrogate half that is not part of a pair. */
function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text)
}

describe('textSplices', () => {
  it('turns any text into any other (property)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', 'c', ' ', 'é', '😀', '👍'), maxLength: 30 })
    fc.assert(
      fc.property(text, text, (from, to) => {
        const splices = textSplices(from, to)
        expect(applySplices(from, splices)).toBe(to)
        // Every intermediate text is valid UTF-16: no splice cuts an emoji in half.
        let step = from
        for (const s of splices) {
          step = applySplices(step, [s])
          expect(hasLoneSurrogate(step)).toBe(false)
        }
        // Never more than replacing everything.
        expect(changed(splices)).toBeLessThanOrEqual(from.length + to.length)
      }),
      params,
    )
  })

  it('writes the smallest edit, not a replacement of the whole text', () => {
    expect(textSplices('same', 'same')).toEqual([])
    expect(textSplices('', 'new')).toEqual([{ index: 0, delete: 0, insert: 'new' }])
    expect(textSplices('old', '')).toEqual([{ index: 0, delete: 3, insert: '' }])
    expect(textSplices('Red umbrella', 'Red umbrellas')).toEqual([{ index: 12, delete: 0, insert: 's' }])
    expect(textSplices('Green umbrella', 'Red umbrella')).toEqual([
      { index: 0, delete: 2, insert: 'R' },
      { index: 2, delete: 2, insert: 'd' },
    ])
    expect(textSplices('the quick fox', 'the quick brown fox')).toEqual([{ index: 10, delete: 0, insert: 'brown ' }])
    expect(textSplices('a😀b', 'a👍b')).toEqual([{ index: 1, delete: 2, insert: '👍' }])
  })

  it('replaces the differing middle in one splice past the work or size bound', () => {
    // Different at every other character: 4,000 edits, over the 125 that 8,000 characters allow.
    const n = 2000
    const from = `<${'ab'.repeat(n)}>`
    const to = `<${'cb'.repeat(n)}>`
    expect(Math.floor(TEXT_DIFF_WORK / (4 * n))).toBeLessThan(2 * n)
    // The common suffix "b>" is kept; the rest of the middle is one splice.
    expect(textSplices(from, to)).toEqual([{ index: 1, delete: 2 * n - 1, insert: 'cb'.repeat(n).slice(0, -1) }])
    // Within the bound the same kind of change is diffed finely.
    expect(textSplices('<abababab>', '<cbcbcbcb>')).toHaveLength(4)
    // A middle over MAX_TEXT_DIFF_CHARS is not diffed at all, however small the change.
    const body = 'ab'.repeat(MAX_TEXT_DIFF_CHARS / 4 + 1)
    expect(textSplices(`A${body}B`, `C${body}D`)).toEqual([{ index: 0, delete: body.length + 2, insert: `C${body}D` }])
    expect(textSplices(`A${body}B`, `A${body}D`)).toEqual([{ index: body.length + 1, delete: 1, insert: 'D' }])
  })
})
