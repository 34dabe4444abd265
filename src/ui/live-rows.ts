import { useEffect, useState } from 'preact/hooks'
import type { Shoal } from '../browser.js'

/*
 * A table's rows, kept live: read once (page by page), then updated from the store's change
 * events, local and remote alike. A table that has not arrived from the mesh yet is empty until
 * its definition does.
 */

export type Row = Record<string, unknown>

export function useRows(db: Shoal, table: string): Map<string, Row> {
  const [rows, setRows] = useState<Map<string, Row>>(new Map())
  useEffect(() => {
    let alive = true
    let loaded = false
    const current = new Map<string, Row>()
    let frame = 0
    // Many events in one frame (a page of rows from a peer) draw once.
    const draw = (): void => {
      if (frame !== 0) return
      frame = requestAnimationFrame(() => {
        frame = 0
        if (alive) setRows(new Map(current))
      })
    }
    const load = async (): Promise<void> => {
      if (loaded || !db.tables().some((t) => t.name === table)) return
      loaded = true
      let after: string | undefined
      for (;;) {
        const page = await db.table(table).scan({ limit: 500, ...(after === undefined ? {} : { after }) })
        const key = db.tables().find((t) => t.name === table)!.primaryKey
        for (const row of page.rows) if (!current.has(String(row[key]))) current.set(String(row[key]), row)
        if (page.next === null) break
        after = page.next
      }
      draw()
    }
    const unsubscribe = db.subscribe((event) => {
      if (event.table !== table) {
        if (!loaded) void load()
        return
      }
      if (event.row === null) current.delete(event.key)
      else current.set(event.key, { ...event.row })
      draw()
    })
    void load()
    return () => {
      alive = false
      unsubscribe()
      cancelAnimationFrame(frame)
    }
  }, [db, table])
  return rows
}

/** Calls `read` now and every `ms`, re-rendering with what it returns. */
export function usePoll<T>(read: () => T, ms: number): T {
  const [value, setValue] = useState(read)
  useEffect(() => {
    const timer = setInterval(() => setValue(read()), ms)
    return () => clearInterval(timer)
  }, [read, ms])
  return value
}
