import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerDatabase } from './browser-keys.js'
import { NetStartError, PeerKeyError } from './errors.js'

/*
 * Port: the peer's key store, in a browser. The key lives in IndexedDB (`<data folder>/peer`,
 * entry 'peer.key', libp2p protobuf encoding). The store's Web Lock on the data folder is held
 * before the key is made, so two tabs never make two keys for one folder.
 */

const KEY = 'peer.key'

/** Where the key is kept, for messages. */
export function peerKeyPath(dataDir: string): string {
  return `IndexedDB '${dataDir}/peer', entry '${KEY}'`
}

/** The peer's persistent identity: created as a new Ed25519 key on first start, reused afterwards; a stored key that does not decode is an error, never replaced. */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PrivateKey> {
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
