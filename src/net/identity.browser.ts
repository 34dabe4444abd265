import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerDatabase } from './browser-keys.js'
import { NetStartError, PeerKeyError } from './errors.js'

/*
 * Port: the peer's key store, in a browser. The key lives in IndexedDB (`<data folder>/peer`,
 * entry 'peer.key', libp2p protobuf encoding), made under a Web Lock so two tabs never make two
 * keys for one folder.
 */

const KEY = 'peer.key'

/** Where the key is kept, for messages. */
export function peerKeyPath(dataDir: string): string {
  return `IndexedDB '${dataDir}/peer', entry '${KEY}'`
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
}

/** The peer's persistent identity: created as a new Ed25519 key on first start, reused afterwards; a stored key that does not decode is an error, never replaced. */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PrivateKey> {
  // Two tabs opening one folder at once must not make two keys: the first makes it, the second reads it.
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks
  return locks === undefined ? loadOrCreate(dataDir) : locks.request(`shoal:peer-key:${dataDir}`, () => loadOrCreate(dataDir))
}

async function loadOrCreate(dataDir: string): Promise<PrivateKey> {
  let db
  try {
    db = await peerDatabase(dataDir)
  } catch (error) {
    throw new NetStartError(`cannot open ${peerKeyPath(dataDir)}: ${(error as Error).message}`, { cause: error })
  }
  const bytes = await db.get(KEY)
  if (bytes !== undefined) {
    if (bytes.length === 0) throw new PeerKeyError(peerKeyPath(dataDir), 'is empty')
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (error) {
      throw new PeerKeyError(peerKeyPath(dataDir), `is not a libp2p private key (${(error as Error).message})`, { cause: error })
    }
  }
  const key = await generateKeyPair('Ed25519')
  await db.put(KEY, privateKeyToProtobuf(key))
  return key
}
