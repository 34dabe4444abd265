import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { editBetween, moveIndex, rebase, type Edit } from '../../src/table/text-edit.js'

const apply = (text: string, e: Edit): string => text.slice(0, e.index) + e.insert + text.slice(e.index + e.delete)

describe('text field edits', () => {
  it('turns typing, deleting and pasting into one edit that reproduces the new text', () => {
    expect(editBetween('ripe', 'ripen')).toEqual({ index: 4, delete: 0, insert: 'n' })
    expect(editBetween('ripe', 'rie')).toEqual({ index: 2, delete: 1, insert: '' })
    expect(editBetween('a b c', 'a XY c')).toEqual({ index: 2, delete: 1, insert: 'XY' })
    expect(editBetween('same', 'same')).toBeNull()
  })

  it('never splits a surrogate pair', () => {
    // '🍎' and '🍐' share their high surrogate: a code-unit diff would keep it and swap the low half only.
    const e = editBetween('a🍎b', 'a🍐b')!
    expect(e).toEqual({ index: 1, delete: 2, insert: '🍐' })
  })

  it('for any two texts, the edit applied to the first gives the second', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const e = editBetween(a, b)
        expect(e === null ? a : apply(a, e)).toBe(b)
      }),
    )
  })

  it('moves a caret with the text around it', () => {
    const e = { index: 2, delete: 0, insert: 'xyz' }
    expect(moveIndex(1, e)).toBe(1)
    expect(moveIndex(2, e)).toBe(2)
    expect(moveIndex(4, e)).toBe(7)
    expect(moveIndex(5, { index: 2, delete: 5, insert: 'q' })).toBe(3)
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.nat(), (a, b, at) => {
        const e = editBetween(a, b)
        if (e === null) return
        const caret = at % (a.length + 1)
        const moved = moveIndex(caret, e)
        expect(moved).toBeGreaterThanOrEqual(0)
        expect(moved).toBeLessThanOrEqual(b.length)
        // Text before the caret that the edit did not touch stays before it.
        if (caret <= e.index) expect(b.slice(0, moved)).toBe(a.slice(0, caret))
      }),
    )
  })
})

describe('rebasing an edit onto text others changed meanwhile', () => {
  it('moves an insert at the end past letters others put at the start', () => {
    const mine = editBetween('apples', 'apples r')!
    expect(rebase(mine, 'apples', 'Fresh apples')).toEqual({ index: 12, delete: 0, insert: ' r' })
    const apply = (text: string, e: Edit): string => text.slice(0, e.index) + e.insert + text.slice(e.index + e.delete)
    expect(apply('Fresh apples', rebase(mine, 'apples', 'Fresh apples'))).toBe('Fresh apples r')
  })

  it('keeps an edit as it is when nobody else changed the text, and stays within the text', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (before, after, current) => {
        const e = editBetween(before, after)
        if (e === null) return
        expect(rebase(e, before, before)).toEqual(e)
        const r = rebase(e, before, current)
        expect(r.index).toBeGreaterThanOrEqual(0)
        expect(r.index + r.delete).toBeLessThanOrEqual(current.length)
      }),
    )
  })
})
