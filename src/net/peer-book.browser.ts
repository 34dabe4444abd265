import { peerDatabase } from './browser-keys.js'
import { parsePeerBook, type PeerBookEntry } from './peer-book-format.js'

/*
 * Port: the peer book in a browser, kept in IndexedDB beside the peer key (`<data folder>/peer`,
 * entry named after the file the Node peer would write). It is a cache, as on Node.
 */

export type { PeerBookEntry } from './peer-book-format.js'

const decoder = new TextDecoder()
const encoder = new TextEncoder()

function where(file: string): { dataDir: string; entry: string } {
  const at = file.lastIndexOf('/')
  return at < 0 ? { dataDir: '.', entry: file } : { dataDir: file.slice(0, at), entry: file.slice(at + 1) }
}

export async function loadPeerBook(file: string): Promise<PeerBookEntry[]> {
  const { dataDir, entry } = where(file)
  try {
    const bytes = await (await peerDatabase(dataDir)).get(entry)
    return bytes === undefined ? [] : parsePeerBook(decoder.decode(bytes))
  } catch {
    return []
  }
}

export async function savePeerBook(file: string, peers: PeerBookEntry[]): Promise<void> {
  const { dataDir, entry } = where(file)
  await (await peerDatabase(dataDir)).put(entry, encoder.encode(JSON.stringify({ version: 1, peers })))
}
