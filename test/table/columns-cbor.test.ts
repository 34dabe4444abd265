import { decode, encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CborError, decodeCbor, encodeCbor, type CborItem } from '../../src/table/columns-cbor.js'
import { hex, load, replica, stockSchema } from '../helpers/table.js'

/* The columns engine's own CBOR: the same bytes as cborg, and honest about what is canonical. */

const itemArb: fc.Arbitrary<CborItem> = fc.letrec<{ item: CborItem }>((tie) => ({
  item: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
    fc.maxSafeInteger(),
    fc.maxSafeNat(),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ maxLength: 300 }),
    fc.array(tie('item'), { maxLength: 6 }),
  ),
})).item

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b)

describe('columns CBOR', () => {
  it('writes what cborg writes, and reads it back as canonical', () => {
    fc.assert(
      fc.property(itemArb, (item) => {
        const ours = encodeCbor(item)
        expect(hex(ours)).toBe(hex(encode(item)))
        const back = decodeCbor(ours)
        expect(back.value).toEqual(item)
        expect(back.canonical).toBe(true)
        expect(decode(ours)).toEqual(item)
      }),
      { numRuns: 2000 },
    )
  })

  it('reads integers in longer heads and floats, but not as canonical', () => {
    expect(decodeCbor(bytes(0x18, 0x05))).toEqual({ value: 5, canonical: false })
    expect(decodeCbor(bytes(0x19, 0x00, 0xff))).toEqual({ value: 255, canonical: false })
    expect(decodeCbor(bytes(0x1b, 0, 0, 0, 0, 0, 0, 0, 1))).toEqual({ value: 1, canonical: false })
    expect(decodeCbor(encode(1.5))).toEqual({ value: 1.5, canonical: false })
    expect(decodeCbor(bytes(0xf9, 0x3c, 0x00))).toEqual({ value: 1, canonical: false })
    expect(decodeCbor(bytes(0xf5))).toEqual({ value: true, canonical: false })
    expect(decodeCbor(bytes(0x1b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)).value).toBe(Number.MAX_SAFE_INTEGER)
  })

  it('refuses what rows never hold, saying what it found', () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [bytes(), /end inside an item/],
      [bytes(0x82, 0x01), /an array of 2 items in 1 bytes/],
      [bytes(0x19, 0x01), /end inside an item/],
      [bytes(0x01, 0x02), /1 bytes after the item/],
      [bytes(0xa1, 0x01, 0x02), /major type 5 \(map\)/],
      [bytes(0x41, 0x00), /major type 2 \(byte string\)/],
      [bytes(0xc1, 0x01), /major type 6 \(tag\)/],
      [bytes(0x9f, 0x01, 0xff), /indefinite lengths/],
      [bytes(0xff), /a break/],
      [bytes(0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0), /beyond 2\^53/],
      [bytes(0x9a, 0xff, 0xff, 0xff, 0xff), /an array of 4294967295 items in 0 bytes/],
      [bytes(0x62, 0xc3, 0x28), /not valid UTF-8/],
      [bytes(0x63, 0x61), /end inside a text string/],
      [new Uint8Array(20).fill(0x81), /nested deeper than 8/],
    ]
    for (const [input, message] of cases) {
      expect(() => decodeCbor(input)).toThrow(CborError)
      expect(() => decodeCbor(input)).toThrow(message)
    }
    expect(() => encodeCbor(1.5)).toThrow(/not a safe integer/)
  })
})

const schema = stockSchema('columns')
const writeArb = fc.oneof(
  fc.record({ op: fc.constant('put' as const), name: fc.string({ maxLength: 8 }), price: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ op: fc.constant('update' as const), name: fc.string({ maxLength: 8 }) }),
  fc.record({ op: fc.constant('increment' as const), by: fc.integer({ min: -20, max: 20 }) }),
  fc.constant({ op: 'delete' as const }),
)

describe('a columns row kept as the bytes it came in', () => {
  it('is exactly what encoding the row again writes, so every replica hashes it alike', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 2 }), writeArb), { minLength: 1, maxLength: 12 }), (steps) => {
        const writers = ['peer-a', 'peer-b', 'peer-c'].map((actor) => replica('columns', actor))
        const source = replica('columns', 'peer-z')
        source.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'start', qty: 0 } }, schema)
        for (const w of writers) w.applyDelta(source.encode())
        for (const [who, write] of steps) {
          const w = writers[who]!
          try {
            const op =
              write.op === 'put'
                ? { op: 'put' as const, values: { sku: 'A1', store: '7', name: write.name, price: write.price } }
                : write.op === 'update'
                  ? { op: 'update' as const, values: { name: write.name } }
                  : write.op === 'increment'
                    ? { op: 'increment' as const, column: 'qty', by: write.by }
                    : { op: 'delete' as const }
            const delta = w.apply(op, schema)
            if (delta !== null) for (const other of writers) if (other !== w) other.applyDelta(delta)
          } catch {
            // update/increment of a deleted row: refused, nothing written
          }
        }
        const encoded = writers[0]!.encode()
        const kept = load('columns', 'peer-q', encoded)
        // deltaSince an empty row encodes every cell from the merged state, not from the bytes.
        const empty = replica('columns', 'peer-e')
        expect(hex(kept.deltaSince(empty.version())!)).toBe(hex(encoded))
        expect(hex(kept.digest())).toBe(hex(writers[1]!.digest()))
      }),
      { numRuns: 300 },
    )
  })

  it('is written again in canonical form when a peer sent it out of order', () => {
    const a = replica('columns', 'peer-a')
    a.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'x', price: 3, qty: 2 } }, schema)
    const canonical = a.encode()
    const [format, cl, actors, seqs, registers, counters] = decode(canonical) as [number, number, string[], number[], unknown[], unknown[]]
    const reversed: unknown[] = []
    for (let i = registers.length - 6; i >= 0; i -= 6) reversed.push(...registers.slice(i, i + 6))
    const shuffled = encode([format, cl, [...actors, 'unused-actor'], seqs, reversed, counters])
    const b = load('columns', 'peer-b', shuffled)
    expect(hex(b.encode())).toBe(hex(canonical))
    expect(hex(b.digest())).toBe(hex(a.digest()))
  })
})
