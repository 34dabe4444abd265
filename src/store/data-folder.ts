import { mkdir } from 'node:fs/promises'
import { DATA_DIR_MODE } from '../constants.js'
import { StoreOpenError } from '../errors.js'

/*
 * Port: where a store's database lives. Node: a folder on disk, made readable by its owner only
 * (it holds every row and the peer's key); LevelDB's own lock keeps a second process out.
 * The browser build replaces this module with data-folder.browser.ts (package.json "browser").
 */

/** Makes the data folder ready for the database; the returned function gives it up after the database is closed. */
export async function claimDataFolder(dir: string): Promise<() => Promise<void>> {
  try {
    await mkdir(dir, { recursive: true, mode: DATA_DIR_MODE })
  } catch (error) {
    throw new StoreOpenError(`cannot create data folder '${dir}': ${(error as Error).message}`, { cause: error })
  }
  return async () => undefined
}
