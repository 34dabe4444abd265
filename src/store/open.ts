import type { Level } from 'level'
import { StoreOpenError } from '../errors.js'
import { claimDataFolder } from './data-folder.js'
import { openLevel } from './database.js'
import { META_ACTOR, META_FORMAT, STORE_FORMAT } from './layout.js'

export interface OpenedDatabase {
  db: Level<string, Uint8Array>
  /** This replica's identity, fixed when the folder was first used. */
  actor: string
  /** Gives up the data folder (after the database is closed). */
  release: () => Promise<void>
}

/**
 * Opens (creating if needed) the LevelDB database of a data folder and reads its identity. The
 * folder is created readable by its owner only: it holds every row and the peer's key.
 */
export async function openDatabase(dir: string, wantedActor: string | undefined): Promise<OpenedDatabase> {
  const release = await claimDataFolder(dir)
  try {
    return await openClaimed(dir, wantedActor, release)
  } catch (error) {
    await release()
    throw error
  }
}

async function openClaimed(dir: string, wantedActor: string | undefined, release: () => Promise<void>): Promise<OpenedDatabase> {
  const db = openLevel(dir)
  try {
    await db.open()
  } catch (error) {
    const cause = (error as { cause?: Error }).cause
    const detail = cause?.message ?? (error as Error).message
    if (/lock/i.test(detail)) {
      throw new StoreOpenError(
        `data folder '${dir}' is in use by another process (its LevelDB lock is held); stop the other Shoal peer or choose another data folder`,
        { cause: error },
      )
    }
    const hint = /no space left/i.test(detail) ? '; LevelDB needs free disk space to open (it compacts on open): free some and retry' : ''
    throw new StoreOpenError(`cannot open data folder '${dir}': ${detail}${hint}`, { cause: error })
  }
  const meta = db.sublevel<string, string>('meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const format = await meta.get(META_FORMAT)
  let actor = await meta.get(META_ACTOR)
  if (format !== undefined && format !== String(STORE_FORMAT)) {
    await db.close()
    throw new StoreOpenError(`data folder '${dir}' is in store format ${format}; this Shoal reads format ${STORE_FORMAT}; use the Shoal version that wrote it`)
  }
  if (format === undefined && actor !== undefined) {
    await db.close()
    throw new StoreOpenError(`data folder '${dir}' was written by a pre-release Shoal without a format marker; start from an empty folder`)
  }
  if (actor === undefined) {
    actor = wantedActor ?? globalThis.crypto.randomUUID()
    await db.batch(
      [
        { type: 'put', key: META_FORMAT, value: String(STORE_FORMAT) },
        { type: 'put', key: META_ACTOR, value: actor },
      ].map((op) => ({ ...op, sublevel: meta })) as never,
      { sync: true } as object,
    )
  } else if (wantedActor !== undefined && wantedActor !== actor) {
    await db.close()
    throw new StoreOpenError(`data folder '${dir}' belongs to replica '${actor}', not '${wantedActor}'; use that folder's own identity or another folder`)
  }
  return { db, actor, release }
}
