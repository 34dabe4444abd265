import { StoreOpenError } from '../errors.js'

/*
 * Port: where a store's database lives, in a browser. The "folder" names an IndexedDB database
 * (browser-level); nothing is made in advance. IndexedDB has no lock a second tab would meet, and
 * two tabs writing one store as one replica would reuse change stamps, so the data folder is held
 * with a Web Lock for as long as the store is open: a second tab gets a clear error instead.
 */

interface LockManagerLike {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void>): Promise<void>
}

export async function claimDataFolder(dir: string): Promise<() => Promise<void>> {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks
  // Without Web Locks (old browsers, some workers) the store opens unguarded, as it would in Node without a lock.
  if (locks === undefined) return async () => undefined
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const granted = await new Promise<boolean>((resolve, reject) => {
    locks
      .request(`shoal:data-folder:${dir}`, { ifAvailable: true }, async (lock) => {
        resolve(lock !== null)
        if (lock !== null) await held
      })
      .catch(reject)
  })
  if (!granted) {
    throw new StoreOpenError(`data folder '${dir}' is in use by another tab or worker of this site; close it, or open this store under another name`)
  }
  return async () => release()
}
