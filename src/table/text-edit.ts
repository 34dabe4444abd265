/*
 * Edits of a text column made against a text read earlier. A text field bound to a collaborative
 * column turns what the user typed into one edit (editBetween), moves its caret the way a remote
 * change moved the text (moveIndex), and an edit carrying the text it was made against (TextEdit
 * `base`) is moved onto the row's current text by the store when it is applied (rebase): others'
 * changes since the read stay, and the edit lands where it was meant to. Indexes are UTF-16 code
 * units, as in the DOM; an edit never splits a surrogate pair.
 */

export interface Edit {
  index: number
  delete: number
  insert: string
}

const isHigh = (code: number): boolean => code >= 0xd800 && code <= 0xdbff
const isLow = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff

/** The single edit turning `before` into `after` (their common start and end kept), or null when equal. */
export function editBetween(before: string, after: string): Edit | null {
  if (before === after) return null
  let start = 0
  const shorter = Math.min(before.length, after.length)
  while (start < shorter && before.charCodeAt(start) === after.charCodeAt(start)) start++
  // Not between the halves of a pair: step back to the pair's start.
  if (start > 0 && isHigh(before.charCodeAt(start - 1))) start--
  let end = 0
  while (end < shorter - start && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++
  if (end > 0 && isLow(before.charCodeAt(before.length - end))) end--
  return { index: start, delete: before.length - start - end, insert: after.slice(start, after.length - end) }
}

/**
 * Where a caret at `index` goes when `edit` is applied before it. A caret exactly where the edit
 * inserts stays before the inserted text, unless `after` (the start of a range of existing text).
 */
export function moveIndex(index: number, edit: Edit, after = false): number {
  if (index < edit.index || (index === edit.index && !after)) return index
  if (index >= edit.index + edit.delete) return index - edit.delete + edit.insert.length
  // Inside removed text: to the end of what replaced it.
  return edit.index + edit.insert.length
}

/**
 * An edit made against `before`, moved onto `current`: the text the store holds now, which may
 * carry changes from others that the field had not shown yet (their difference, taken as one edit).
 */
export function rebase(edit: Edit, before: string, current: string): Edit {
  const theirs = editBetween(before, current)
  if (theirs === null) return edit
  // A deletion is of text that existed: text inserted right at its start is not part of it.
  const index = moveIndex(edit.index, theirs, edit.delete > 0)
  const end = Math.max(index, moveIndex(edit.index + edit.delete, theirs))
  return { index: Math.min(index, current.length), delete: Math.min(end, current.length) - Math.min(index, current.length), insert: edit.insert }
}
