import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'

/* SHA-256 in the browser (sha256.ts uses Node's native one): the same digest. */
export function sha256(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes)
}
