import { useEffect, useRef } from 'preact/hooks'
import type { Table } from '../browser.js'
import { editBetween, moveIndex, rebase, type Edit } from './text-diff.js'

/**
 * A text column as a field two people can type in at once: each keystroke is sent as an edit of
 * the row's text CRDT (not the whole value), and a remote change moves the caret with the text.
 *
 * Keystrokes are written one after the other, each moved onto the text the store holds at that
 * moment (others' letters may have arrived since the field last showed it: an index taken from
 * the field alone would land that many letters off). The field takes the store's text only when
 * none of its own edits is waiting, and reads it from the store then (the `value` prop may be a
 * frame behind): showing it earlier would drop the newest letters for a moment and move the caret.
 */
export function NoteField({ table, rowKey, column, value, label }: { table: Table; rowKey: string; column: string; value: string; label: string }) {
  const field = useRef<HTMLTextAreaElement>(null)
  // The text the field's content was last derived from: typing is diffed against it.
  const shown = useRef(value)
  const queue = useRef<Array<{ edit: Edit; before: string }>>([])
  const writing = useRef(false)

  const stored = async (): Promise<string> => String((await table.get(rowKey))?.[column] ?? '')
  const take = (text: string): void => {
    const el = field.current
    if (el === null || writing.current) return
    shown.current = text
    if (text === el.value) return
    const edit = editBetween(el.value, text)
    const [start, end, focused] = [el.selectionStart, el.selectionEnd, document.activeElement === el]
    el.value = text
    if (edit !== null && focused) el.setSelectionRange(moveIndex(start, edit), moveIndex(end, edit))
  }
  const settle = (): void => {
    stored().then(take, (error: unknown) => console.error(`could not read the ${column} of ${rowKey}`, error))
  }
  useEffect(settle, [value])

  const write = async (): Promise<void> => {
    if (writing.current) return
    writing.current = true
    try {
      for (let next = queue.current.shift(); next !== undefined; next = queue.current.shift()) {
        const edit = rebase(next.edit, next.before, await stored())
        await table.editText(rowKey, column, edit).catch((error: unknown) => console.error(`could not save the ${column} of ${rowKey}`, error))
      }
    } finally {
      writing.current = false
    }
    settle()
  }
  const onInput = (): void => {
    const el = field.current
    if (el === null) return
    const edit = editBetween(shown.current, el.value)
    if (edit === null) return
    queue.current.push({ edit, before: shown.current })
    shown.current = el.value
    void write()
  }
  return <textarea ref={field} class="note" rows={2} aria-label={label} placeholder="notes…" defaultValue={value} onInput={onInput} />
}
