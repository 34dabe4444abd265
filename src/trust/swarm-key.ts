import { TrustError } from './errors.js'

/*
 * The mesh secret as libp2p's private networks write it (a "swarm key", the format IPFS and
 * @libp2p/pnet read):
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits: 32 random bytes>
 *
 * Pure: the random bytes are passed in.
 */

export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
export const SWARM_KEY_BYTES = 32
/** A swarm key file is ~95 bytes; anything much longer is not one. */
const MAX_SWARM_KEY_FILE_BYTES = 256

/** The file text for a secret of 32 random bytes. */
export function formatSwarmKey(secret: Uint8Array): Uint8Array {
  if (secret.length !== SWARM_KEY_BYTES) throw new TrustError('SWARM_KEY_INVALID', `a swarm key holds ${SWARM_KEY_BYTES} bytes, not ${secret.length}`)
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n/base16/\n${Buffer.from(secret).toString('hex')}\n`)
}

/**
 * Checks a swarm key file's bytes (`source`: its path, for the message) and returns them as
 * libp2p takes them; TrustError (SWARM_KEY_INVALID) saying what is wrong.
 */
export function parseSwarmKey(bytes: Uint8Array, source: string): Uint8Array {
  const bad = (what: string): never => {
    throw new TrustError('SWARM_KEY_INVALID', `swarm key '${source}' ${what}; copy it again from the mesh's authority folder (swarm.key)`)
  }
  if (bytes.length > MAX_SWARM_KEY_FILE_BYTES) bad(`is ${bytes.length} bytes, not a swarm key`)
  const lines = Buffer.from(bytes).toString('utf8').split(/\r?\n/)
  if (lines[0] !== SWARM_KEY_HEADER) bad(`does not start with ${SWARM_KEY_HEADER}`)
  if (lines[1] !== '/base16/') bad('is not in base16 (second line /base16/)')
  if (!/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) bad(`does not hold ${SWARM_KEY_BYTES} bytes as 64 hex digits on its third line`)
  if (lines.slice(3).some((l) => l.trim() !== '')) bad('has text after the key')
  return formatSwarmKey(Buffer.from(lines[2]!, 'hex'))
}

/** The 32-byte secret a checked swarm key file holds. */
export function swarmKeySecret(bytes: Uint8Array, source: string): Uint8Array {
  const lines = Buffer.from(parseSwarmKey(bytes, source)).toString('utf8').split('\n')
  return new Uint8Array(Buffer.from(lines[2]!, 'hex'))
}
