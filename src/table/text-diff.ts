import { diffChars } from 'diff'

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
 * Most edits the diff may look for in the part that differs (characters inserted plus removed).
 * Myers' algorithm costs O((N + M) · D) for D edits, so D is capped: a replacement that needs
 * more is written as one splice of the differing middle. Setting a text column to a value means a
 * small correction far more often than a rewrite, and a rewrite is a rewrite either way.
 */
export const MAX_TEXT_DIFF_EDITS = 2000

/** A second bound, on time, for hostile inputs that reach MAX_TEXT_DIFF_EDITS slowly. */
export const MAX_TEXT_DIFF_MS = 20

const isHighSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff

/**
 * The splices that turn `from` into `to` with the fewest characters removed and inserted (within
 * the bounds above), so a put of a whole new value merges with concurrent edits as edits do:
 * the parts both replicas kept stay once, instead of each put deleting the old text and inserting
 * its own copy beside the other's. Never splits a surrogate pair.
 */
export function textSplices(from: string, to: string): TextSplice[] {
  if (from === to) return []
  // The common prefix and suffix cost O(N) to find and are most of any small edit.
  let start = 0
  const shorter = Math.min(from.length, to.length)
  while (start < shorter && from.charCodeAt(start) === to.charCodeAt(start)) start++
  if (start > 0 && isHighSurrogate(from.charCodeAt(start - 1))) start--
  let end = 0
  while (end < shorter - start && from.charCodeAt(from.length - 1 - end) === to.charCodeAt(to.length - 1 - end)) end++
  if (end > 0 && isLowSurrogate(from.charCodeAt(from.length - end))) end--
  const oldMiddle = from.slice(start, from.length - end)
  const newMiddle = to.slice(start, to.length - end)
  if (oldMiddle === '' || newMiddle === '') return [{ index: start, delete: oldMiddle.length, insert: newMiddle }]

  const changes = diffChars(oldMiddle, newMiddle, { maxEditLength: MAX_TEXT_DIFF_EDITS, timeout: MAX_TEXT_DIFF_MS })
  if (changes === undefined) return [{ index: start, delete: oldMiddle.length, insert: newMiddle }]
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
