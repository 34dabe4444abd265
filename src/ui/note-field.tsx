import { useEffect, useRef } from 'preact/hooks'
import { editBetween, moveIndex, type Table } from '../browser.js'

/**
 * A text column as a field two people can type in at once: each keystroke is sent as an edit of
 * the row's text CRDT (not the whole value), with the text it was made against (`base`), so the
 * store moves it past letters others typed meanwhile; a remote change moves the caret with the
 * text. The field takes the store's text only when none of its own edits is still being written,
 * and reads it from the store then (the `value` prop may be a frame behind): taking it earlier
 * would drop the newest letters for a moment and move the caret before them.
 */
export function NoteField({ table, rowKey, column, value, label }: { table: Table; rowKey: string; column: string; value: string; label: string }) {
  const field = useRef<HTMLTextAreaElement>(null)
  // The field's content is its own from the first render on (take() updates it): a changing
  // default would be written into the field on every render of the board.
  const initial = useRef(value)
  // The text the field's content was last derived from: typing is diffed against it.
  const shown = useRef(value)
  const writing = useRef(0)
  /** Keystrokes taken so far: a read of the store begun before the latest one is stale. */
  const typed = useRef(0)

  const take = (text: string): void => {
    const el = field.current
    if (el === null || writing.current > 0) return
    shown.current = text
    if (text === el.value) return
    const edit = editBetween(el.value, text)
    const [start, end, focused] = [el.selectionStart, el.selectionEnd, document.activeElement === el]
    el.value = text
    if (edit !== null && focused) el.setSelectionRange(moveIndex(start, edit), moveIndex(end, edit))
  }
  const settle = (): void => {
    const at = typed.current
    table.get(rowKey).then(
      (row) => {
        // Typed meanwhile: the text read may lack that letter; that write's own settle follows.
        if (typed.current === at) take(String(row?.[column] ?? ''))
      },
      (error: unknown) => console.error(`could not read the ${column} of ${rowKey}`, error),
    )
  }
  useEffect(settle, [value])

  const onInput = (): void => {
    const el = field.current
    if (el === null) return
    const before = shown.current
    const edit = editBetween(before, el.value)
    if (edit === null) return
    shown.current = el.value
    typed.current++
    writing.current++
    table
      .editText(rowKey, column, { ...edit, base: before })
      .catch((error: unknown) => console.error(`could not save the ${column} of ${rowKey}`, error))
      .finally(() => {
        if (--writing.current === 0) settle()
      })
  }
  return <textarea ref={field} class="note" rows={2} aria-label={label} placeholder="notes…" defaultValue={initial.current} onInput={onInput} />
}
