import { randomBytes } from 'node:crypto'
import { chmod, link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { DATA_DIR_MODE } from '../constants.js'
import { PEER_KEY_FILE, PEER_KEY_MODE } from './constants.js'
import { NetStartError, PeerKeyError } from './errors.js'

/** Path of the peer's private key file inside its data folder. */
export function peerKeyPath(dataDir: string): string {
  return join(dataDir, PEER_KEY_FILE)
}

/**
 * The peer's persistent identity: the private key in `<dataDir>/peer.key` (libp2p protobuf
 * encoding, mode 0600). Created as a new Ed25519 key on first start, reused on every later one so
 * the peer id stays the same. A file that exists but does not decode is an error, never silently
 * replaced: replacing it would change the peer id behind the operator's back.
 */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PrivateKey> {
  const file = peerKeyPath(dataDir)
  const existing = await readKeyFile(file)
  if (existing !== undefined) return existing

  try {
    await mkdir(dataDir, { recursive: true, mode: DATA_DIR_MODE })
  } catch (error) {
    throw new NetStartError(`cannot create data folder '${dataDir}': ${(error as Error).message}`, { cause: error })
  }
  const key = await generateKeyPair('Ed25519')
  const bytes = privateKeyToProtobuf(key)

  // Write a private temp file, make it durable, then link it into place: link() fails if another
  // process created peer.key meanwhile, and then that process's key is the one to use.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    const handle = await open(temp, 'wx', PEER_KEY_MODE)
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(temp, file)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const theirs = await readKeyFile(file)
      if (theirs !== undefined) return theirs
      throw error
    }
  } catch (error) {
    if (error instanceof PeerKeyError) throw error
    throw new NetStartError(`cannot write peer key file '${file}': ${(error as Error).message}`, { cause: error })
  } finally {
    await unlink(temp).catch(() => undefined)
  }
  await syncDir(dataDir)
  return key
}

/** The key in `file`, undefined if there is no such file; PeerKeyError if it is unreadable or corrupt. */
async function readKeyFile(file: string): Promise<PrivateKey | undefined> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new PeerKeyError(file, `cannot be read (${(error as Error).message})`, { cause: error })
  }
  if (bytes.length === 0) throw new PeerKeyError(file, 'is empty')
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (error) {
    throw new PeerKeyError(file, `is not a libp2p private key (${(error as Error).message})`, { cause: error })
  }
  // A key someone copied in with a looser mode is still this peer's key: tighten it, don't refuse.
  try {
    const info = await stat(file)
    if ((info.mode & 0o777) !== PEER_KEY_MODE) await chmod(file, PEER_KEY_MODE)
  } catch {
    // a read-only data folder or a file owned by someone else: the key is still usable
  }
  return key
}

async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch {
    // Not every platform can fsync a directory; the key file itself is already synced.
  }
}
