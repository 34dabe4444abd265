import { diffChars } from 'diff'
import { editBetween } from './text-edit.js'

/**
 * One splice of a text, in UTF-16 code units (the unit both engines index text by): remove
 * `delete` units at `index`, then insert `insert` there. A list of them applies left to right, each
 * index counted in the text as the previous splices left it.
 */
export interface TextSplice {
  index: number
  delete: number
  insert: string
}

/**
 * The diff looks at most this many UTF-16 code units of the part that differs (old and new middle
 * together, after the common prefix and suffix are cut off); a larger middle is replaced in one
 * splice. A small correction to a long text has a small middle, so it still diffs finely.
 */
export const MAX_TEXT_DIFF_CHARS = 20_000

/**
 * Work bound of the diff: Myers' algorithm costs O((N + M) · D) for D edits, and jsdiff took
 * 8–30 ns per unit of it (measured, Node 20, this project's 2-core machine at load 8), so the
 * edits it may look for are capped at TEXT_DIFF_WORK / (N + M): 10–30 ms at worst, 2,000 edits
 * for a 500-character middle, 50 for the largest. Past the cap the middle is replaced in one
 * splice. The bound counts work, not time, so the same put gives the same edit on every machine
 * and under any load (a time limit made concurrent puts merge differently on a busy machine).
 */
export const TEXT_DIFF_WORK = 1_000_000


/**
 * The splices that turn `from` into `to` with the fewest characters removed and inserted (within
 * the bounds above), so a put of a whole new value merges with concurrent edits as edits do:
 * the parts both replicas kept stay once, instead of each put deleting the old text and inserting
 * its own copy beside the other's. Never splits a surrogate pair.
 */
export function textSplices(from: string, to: string): TextSplice[] {
  if (from === to) return []
  // The common prefix and suffix cost O(N) to find and are most of any small edit.
  const outer = editBetween(from, to)!
  const start = outer.index
  const oldMiddle = from.slice(start, start + outer.delete)
  const newMiddle = outer.insert
  if (oldMiddle === '' || newMiddle === '') return [{ index: start, delete: oldMiddle.length, insert: newMiddle }]

  const whole = [{ index: start, delete: oldMiddle.length, insert: newMiddle }]
  const size = oldMiddle.length + newMiddle.length
  if (size > MAX_TEXT_DIFF_CHARS) return whole
  const changes = diffChars(oldMiddle, newMiddle, { maxEditLength: Math.floor(TEXT_DIFF_WORK / size) })
  if (changes === undefined) return whole
  const splices: TextSplice[] = []
  let at = start
  for (const change of changes) {
    const length = change.value.length
    if (change.added) {
      const last = splices.at(-1)
      // A removal followed by an insertion at the same place is one replacement.
      if (last !== undefined && last.index + last.insert.length === at && last.insert === '') last.insert = change.value
      else splices.push({ index: at, delete: 0, insert: change.value })
      at += length
    } else if (change.removed) {
      splices.push({ index: at, delete: length, insert: '' })
    } else {
      at += length
    }
  }
  return splices
}
