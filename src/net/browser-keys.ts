import { Level } from 'level'

/*
 * What the browser ports keep beside the store: the peer key and the peer book, in one small
 * IndexedDB database of their own (`<data folder>/peer`), not in the store's.
 */

const opened = new Map<string, Promise<Level<string, Uint8Array>>>()

/** The little database of a data folder, opened once per page. */
export function peerDatabase(dataDir: string): Promise<Level<string, Uint8Array>> {
  let db = opened.get(dataDir)
  if (db === undefined) {
    const level = new Level<string, Uint8Array>(`${dataDir}/peer`, { keyEncoding: 'utf8', valueEncoding: 'view' })
    db = level.open().then(() => level)
    db.catch(() => opened.delete(dataDir))
    opened.set(dataDir, db)
  }
  return db
}
