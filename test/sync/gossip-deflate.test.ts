import { deflateRawSync } from 'node:zlib'
import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import { MIN_GOSSIP_DEFLATE_BYTES, packGossip, SerialByKey, unpackGossip } from '../../src/sync/gossip-deflate.js'
import { decodeDeltaBatch, encodeChangesetMessage, encodeDeflatedMessage, encodeDeltaBatch, gossipKind, MAX_GOSSIP_BYTES } from '../../src/sync/gossip.js'
import { columnsEngine } from '../../src/table/columns-engine.js'

/** A coalesced message of `n` one-column updates, as a writer of the bench's `stock` rows sends it. */
function updates(n: number): Uint8Array {
  const context = { actor: '0f3c2a9e-8d41-4b7a-9c55-1e2f3a4b5c6d' }
  const deltas = Array.from({ length: n }, (_, i) => {
    const doc = columnsEngine.create(context)
    const delta = doc.change((w) => {
      w.setCausalLength(1)
      w.setRegister(1, i % 2 === 0 ? 'qty' : 'shelf', i % 2 === 0 ? (i * 31) % 977 : `B${i % 40}-${i % 9}`)
    })!
    return { key: `r${String(i * 7).padStart(7, '0')}`, delta }
  })
  return encodeDeltaBatch({ table: 'stock', partition: 's3', deltas })
}

describe('deflated gossip', () => {
  it('deflates a coalesced message of row deltas several times over, and the receiver reads the same message', async () => {
    const message = updates(50)
    const packed = await packGossip(message)
    expect(gossipKind(packed)).toBe('deflated')
    expect(packed.length).toBeLessThan(message.length / 4)
    const back = await unpackGossip(packed)
    expect(back).toEqual(message)
    expect(decodeDeltaBatch(back).deltas).toHaveLength(50)
  })

  it('sends small messages, and messages deflate cannot shrink, as they are', async () => {
    const small = updates(1)
    expect(small.length).toBeLessThan(MIN_GOSSIP_DEFLATE_BYTES)
    expect(await packGossip(small)).toBe(small)
    const noise = encodeChangesetMessage(crypto.getRandomValues(new Uint8Array(4096)))
    expect(await packGossip(noise)).toBe(noise)
  })

  it('any deltas or changeset message goes through pack and unpack unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.integer({ min: 1, max: 4 }), async (bytes, repeat) => {
        const message = encodeChangesetMessage(new Uint8Array(Array.from({ length: repeat }, () => [...bytes]).flat()))
        const packed = await packGossip(message)
        expect(packed.length).toBeLessThanOrEqual(message.length)
        expect(gossipKind(packed) === 'deflated' ? await unpackGossip(packed) : packed).toEqual(message)
      }),
      { numRuns: 60 },
    )
  })

  it('refuses, with a reason, what is not deflate, what inflates past the limit, and what holds anything but deltas or a changeset', async () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [encodeDeflatedMessage(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x00])), /not valid deflate/],
      [encodeDeflatedMessage(deflateRawSync(new Uint8Array(MAX_GOSSIP_BYTES + 1))), /inflates past the 524288-byte limit/],
      [encodeDeflatedMessage(deflateRawSync(encodeDeflatedMessage(deflateRawSync(updates(20))))), /neither row deltas nor a changeset/],
      [encodeDeflatedMessage(deflateRawSync(encode([1, 'partition', 'stock', '7', null]))), /neither row deltas nor a changeset/],
      [encodeDeflatedMessage(deflateRawSync(new Uint8Array([1, 2, 3]))), /neither row deltas nor a changeset/],
      [encode([1, 'deflated', 'not bytes']), /not a \[version, "deflated", bytes\] array/],
      [encode([1, 'deflated', new Uint8Array(0)]), /not a \[version, "deflated", bytes\] array/],
      [new Uint8Array([1, 2, 3]), /not valid CBOR/],
    ]
    for (const [bytes, reason] of cases) {
      const refused = await unpackGossip(bytes).then(
        () => null,
        (error: unknown) => error,
      )
      expect(refused, String(reason)).toBeInstanceOf(ProtocolError)
      expect((refused as Error).message).toMatch(reason)
    }
  })
})

describe('SerialByKey', () => {
  it('runs the steps of one key in the order they were queued, whatever each takes, and keys apart', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.integer({ min: 0, max: 3 }), fc.boolean()), { minLength: 1, maxLength: 20 }), async (steps) => {
        const serial = new SerialByKey()
        const done: Record<string, number[]> = { a: [], b: [] }
        const runs = steps.map(([key, ticks, fails], i) =>
          serial
            .run(key, async () => {
              for (let t = 0; t < ticks; t++) await Promise.resolve()
              done[key]!.push(i)
              if (fails) throw new Error(`step ${i}`)
              return i
            })
            .then(
              (value) => expect(value).toBe(i),
              (error: unknown) => expect((error as Error).message).toBe(`step ${i}`),
            ),
        )
        await Promise.all(runs)
        await serial.idle()
        for (const key of ['a', 'b']) expect(done[key]).toEqual(steps.flatMap(([k], i) => (k === key ? [i] : [])))
        expect(serial.busy('a') || serial.busy('b')).toBe(false)
      }),
    )
  })
})
