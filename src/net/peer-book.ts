import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { parsePeerBook, type PeerBookEntry } from './peer-book-format.js'

/* Port: the peer book (peer-book-format.ts) as a file, peers.json. The browser build replaces this module with peer-book.browser.ts. */

export type { PeerBookEntry } from './peer-book-format.js'

export async function loadPeerBook(file: string): Promise<PeerBookEntry[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return []
  }
  return parsePeerBook(text)
}

/** Replace the file atomically (temp file, fsync, rename). */
export async function savePeerBook(file: string, peers: PeerBookEntry[]): Promise<void> {
  const body = { version: 1, peers }
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'w', 0o600)
    try {
      await handle.writeFile(JSON.stringify(body, null, 2) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, file)
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
}
