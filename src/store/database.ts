import { Level } from 'level'

/*
 * Port: the LevelDB-shaped database a store lives in. Node: classic-level (LevelDB) in the data
 * folder. The browser build replaces this module with database.browser.ts (IndexedDB).
 */

export function openLevel(location: string): Level<string, Uint8Array> {
  return new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' })
}
