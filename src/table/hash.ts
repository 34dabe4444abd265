import { sha256 } from './sha256.js'
import { DIGEST_BYTES } from '../constants.js'

const encoder = new TextEncoder()

/** 128-bit SHA-256 prefix: collision-safe for digests, and the same in Node and browsers. */
export function hash128(bytes: Uint8Array): Uint8Array {
  return sha256(bytes).subarray(0, DIGEST_BYTES)
}

export function hashText(text: string): Uint8Array {
  return sha256(encoder.encode(text))
}

/**
 * Bytes of `text` in UTF-8, as TextEncoder would write it (a lone surrogate becomes U+FFFD, 3
 * bytes), without allocating the encoding: size checks run on every key of every write.
 */
export function utf8Length(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) bytes += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair: two code units, four bytes.
      bytes += 2
      i++
    } else bytes += 2
  }
  return bytes
}

export function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) throw new Error(`not a hex string: ${hex.slice(0, 20)}`)
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** a XOR b, as a new array of a's length. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ (b[i] ?? 0)
  return out
}

/** XORs `value` into `target` at `offset`, in place. */
export function xorInto(target: Uint8Array, offset: number, value: Uint8Array): void {
  for (let i = 0; i < value.length; i++) target[offset + i]! ^= value[i]!
}

export function isZeroBytes(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false
  return true
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}
