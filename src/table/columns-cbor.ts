/*
 * CBOR for the columns engine's rows and deltas, read and written by hand. They hold only
 * integers, text strings and arrays, and every change of every row decodes a delta and encodes
 * the row: through cborg's generic token stream that was a quarter of the time a peer spent
 * applying remote changes (bench/README.md, "Row path"). This reads and writes exactly RFC 8949
 * CBOR, so rows written by either stay readable by both (test/table/columns-cbor.test.ts compares
 * them on random items).
 *
 * Decoding also says whether the bytes are in the shortest form (deterministic encoding, RFC 8949
 * §4.2.1: shortest integer heads, no floats), which the engine needs to keep a peer's bytes as the
 * row's own encoding without writing them again. Floats and the simple values are read (as cborg
 * would) but are never in the shortest form of a row; byte strings, maps, tags, indefinite lengths
 * and integers beyond 2^53 are refused.
 */

export type CborItem = number | string | CborItem[]

export class CborError extends Error {}

const MAX_DEPTH = 8
const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

let out = new Uint8Array(4096)
let at = 0

function room(bytes: number): void {
  if (at + bytes <= out.length) return
  const bigger = new Uint8Array(Math.max(out.length * 2, at + bytes))
  bigger.set(out.subarray(0, at))
  out = bigger
}

function head(major: number, n: number): void {
  room(9)
  const m = major << 5
  if (n < 24) out[at++] = m | n
  else if (n < 0x100) {
    out[at++] = m | 24
    out[at++] = n
  } else if (n < 0x10000) {
    out[at++] = m | 25
    out[at++] = n >>> 8
    out[at++] = n & 0xff
  } else if (n < 0x100000000) {
    out[at++] = m | 26
    out[at++] = n >>> 24
    out[at++] = (n >>> 16) & 0xff
    out[at++] = (n >>> 8) & 0xff
    out[at++] = n & 0xff
  } else {
    const hi = Math.floor(n / 0x100000000)
    const lo = n >>> 0
    out[at++] = m | 27
    out[at++] = hi >>> 24
    out[at++] = (hi >>> 16) & 0xff
    out[at++] = (hi >>> 8) & 0xff
    out[at++] = hi & 0xff
    out[at++] = lo >>> 24
    out[at++] = (lo >>> 16) & 0xff
    out[at++] = (lo >>> 8) & 0xff
    out[at++] = lo & 0xff
  }
}

function text(s: string): void {
  let ascii = true
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false
      break
    }
  }
  if (ascii) {
    head(3, s.length)
    room(s.length)
    for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i)
    return
  }
  const bytes = utf8.encode(s)
  head(3, bytes.length)
  room(bytes.length)
  out.set(bytes, at)
  at += bytes.length
}

function item(value: CborItem): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new CborError(`${value} is not a safe integer: the columns engine writes integers only`)
    if (value >= 0) head(0, value)
    else head(1, -1 - value)
  } else if (typeof value === 'string') text(value)
  else {
    head(4, value.length)
    for (const v of value) item(v)
  }
}

/** The shortest CBOR encoding of `value` (integers, text, arrays). */
export function encodeCbor(value: CborItem): Uint8Array {
  at = 0
  item(value)
  return out.slice(0, at)
}

/** A decoded item, and whether its bytes were its shortest encoding. */
export interface Decoded {
  value: unknown
  canonical: boolean
}

class Reader {
  pos = 0
  canonical = true
  constructor(private readonly bytes: Uint8Array) {}

  private byte(): number {
    if (this.pos >= this.bytes.length) throw new CborError('the bytes end inside an item')
    return this.bytes[this.pos++]!
  }

  /** The argument of a head whose additional info is `info`. */
  private argument(info: number): number {
    if (info < 24) return info
    const b = this.bytes
    const need = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1
    if (need < 0) throw new CborError(info === 31 ? 'indefinite lengths are not used by rows' : `reserved additional info ${info}`)
    if (this.pos + need > b.length) throw new CborError('the bytes end inside an item')
    let n: number
    const p = this.pos
    if (need === 1) n = b[p]!
    else if (need === 2) n = (b[p]! << 8) | b[p + 1]!
    else if (need === 4) n = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0
    else {
      const hi = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0
      const lo = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0
      if (hi >= 0x200000) throw new CborError('an integer beyond 2^53')
      n = hi * 0x100000000 + lo
    }
    this.pos += need
    const shortest = n < 24 ? 0 : n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x100000000 ? 4 : 8
    if (shortest !== need) this.canonical = false
    return n
  }

  private float(info: number): number {
    const b = this.bytes
    const need = info === 25 ? 2 : info === 26 ? 4 : 8
    if (this.pos + need > b.length) throw new CborError('the bytes end inside an item')
    const view = new DataView(b.buffer, b.byteOffset + this.pos, need)
    this.pos += need
    this.canonical = false
    if (need === 4) return view.getFloat32(0)
    if (need === 8) return view.getFloat64(0)
    const half = view.getUint16(0)
    const exp = (half >>> 10) & 0x1f
    const mant = half & 0x3ff
    const sign = half & 0x8000 ? -1 : 1
    if (exp === 0) return sign * 2 ** -14 * (mant / 1024)
    if (exp === 31) return mant === 0 ? sign * Infinity : NaN
    return sign * 2 ** (exp - 15) * (1 + mant / 1024)
  }

  read(depth: number): unknown {
    const initial = this.byte()
    const major = initial >>> 5
    const info = initial & 0x1f
    switch (major) {
      case 0:
        return this.argument(info)
      case 1:
        return -1 - this.argument(info)
      case 3: {
        const length = this.argument(info)
        if (this.pos + length > this.bytes.length) throw new CborError('the bytes end inside a text string')
        const start = this.pos
        this.pos += length
        // Short ASCII (actor ids, column names, small values) is cheaper by hand than through TextDecoder.
        if (length <= 32) {
          let s = ''
          for (let i = start; i < start + length; i++) {
            const c = this.bytes[i]!
            if (c >= 0x80) return utf8Of(this.bytes.subarray(start, start + length))
            s += String.fromCharCode(c)
          }
          return s
        }
        return utf8Of(this.bytes.subarray(start, start + length))
      }
      case 4: {
        const length = this.argument(info)
        if (depth >= MAX_DEPTH) throw new CborError(`arrays nested deeper than ${MAX_DEPTH}`)
        // Each item takes at least one byte: a length the bytes cannot hold is refused before allocating.
        if (length > this.bytes.length - this.pos) throw new CborError(`an array of ${length} items in ${this.bytes.length - this.pos} bytes`)
        const list: unknown[] = new Array(length)
        for (let i = 0; i < length; i++) list[i] = this.read(depth + 1)
        return list
      }
      case 7:
        if (info === 20 || info === 21 || info === 22 || info === 23) {
          this.canonical = false
          return info === 20 ? false : info === 21 ? true : info === 22 ? null : undefined
        }
        if (info === 25 || info === 26 || info === 27) return this.float(info)
        throw new CborError(info === 31 ? 'a break outside an indefinite item' : `simple value ${info} is not used by rows`)
      default:
        throw new CborError(`major type ${major} (${['', '', 'byte string', '', '', 'map', 'tag'][major]}) is not used by rows`)
    }
  }
}

function utf8Of(bytes: Uint8Array): string {
  try {
    return utf8Strict.decode(bytes)
  } catch {
    throw new CborError('a text string is not valid UTF-8')
  }
}

/** Decodes one CBOR item filling all of `bytes`; CborError says what is wrong. */
export function decodeCbor(bytes: Uint8Array): Decoded {
  const reader = new Reader(bytes)
  const value = reader.read(0)
  if (reader.pos !== bytes.length) throw new CborError(`${bytes.length - reader.pos} bytes after the item`)
  return { value, canonical: reader.canonical }
}
