import { BrowserLevel } from 'browser-level'
import type { Level } from 'level'

/*
 * Port: the database a store lives in, in a browser: browser-level (IndexedDB), with its batch
 * and getMany issuing all their requests at once. browser-level makes each request of a batch
 * wait for the previous one's success (to save CPU), and reads a getMany on 16 sequential lanes;
 * a page of 1,000 rows is some 5,000 records, so a tab spent most of a load waiting on IndexedDB
 * round trips (10k rows from a Node peer: 7.2 s → 3.9 s with batches issued at once). Requests
 * of one IndexedDB transaction run in the order they were made, and the transaction is still
 * all-or-nothing.
 */

type Key = Uint8Array<ArrayBuffer>
type Operation = { type: 'put'; key: Key; value: Uint8Array } | { type: 'del'; key: Key }

const asView = (data: unknown): Uint8Array | undefined =>
  data === undefined ? undefined : data instanceof Uint8Array ? data : data instanceof ArrayBuffer ? new Uint8Array(data) : new TextEncoder().encode(String(data))

class PipelinedLevel extends BrowserLevel<string, Uint8Array> {
  private objectStore(mode: IDBTransactionMode): IDBObjectStore {
    // browser-level's `db` getter: the open IDBDatabase (not in its type declarations)
    const db = (this as unknown as { db: IDBDatabase }).db
    return db.transaction([this.location], mode).objectStore(this.location)
  }

  async _batch(operations: Operation[]): Promise<void> {
    const store = this.objectStore('readwrite')
    const transaction = store.transaction
    const done = new Promise<void>((resolve, reject) => {
      transaction.oncomplete = () => resolve()
      transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'))
    })
    try {
      for (const op of operations) {
        if (op.type === 'del') store.delete(op.key)
        else store.put(op.value, op.key)
      }
      transaction.commit()
    } catch (error) {
      transaction.abort()
      await done.catch(() => undefined)
      throw error
    }
    return done
  }

  async _getMany(keys: Key[]): Promise<Array<Uint8Array | undefined>> {
    const store = this.objectStore('readonly')
    return Promise.all(
      keys.map(
        (key) =>
          new Promise<Uint8Array | undefined>((resolve, reject) => {
            const request = store.get(key)
            request.onsuccess = () => resolve(asView(request.result))
            request.onerror = (event) => {
              event.stopPropagation()
              reject(request.error)
            }
          }),
      ),
    )
  }
}

export function openLevel(location: string): Level<string, Uint8Array> {
  // cast: in a browser `level`'s Level is BrowserLevel, which this extends
  return new PipelinedLevel(location, { keyEncoding: 'utf8', valueEncoding: 'view' }) as unknown as Level<string, Uint8Array>
}
