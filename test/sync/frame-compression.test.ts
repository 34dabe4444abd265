import { deflateRawSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FLAG_DEFLATE, FLAG_PLAIN, MIN_DEFLATE_BYTES, packFrame, unpackFrame } from '../../src/sync/frame-compression.js'
import { decodeResponse, encodeResponse, MAX_FRAME_BYTES } from '../../src/sync/sync-messages.js'

const rowPage = (): Uint8Array =>
  encodeResponse({
    type: 'range',
    rows: Array.from({ length: 200 }, (_, i) => ({ key: `row-${i}`, bytes: new TextEncoder().encode(`{"store":"${i % 4}","sku":"SKU-${i}","shelf":"aisle ${i % 9}"}`) })),
    next: null,
  })

describe('sync frame compression (/shoal/sync/1.1.0)', () => {
  it('deflates a page of rows, and the peer reads back the same frame', async () => {
    const frame = rowPage()
    const packed = await packFrame(frame)
    expect(packed[0]).toBe(FLAG_DEFLATE)
    expect(packed.length).toBeLessThan(frame.length / 2)
    const back = await unpackFrame(packed, MAX_FRAME_BYTES)
    expect(back).toEqual(frame)
    expect(decodeResponse(back, 'range')).toMatchObject({ type: 'range', next: null })
  })

  it('sends small frames and frames deflate cannot shrink as they are, behind the plain flag', async () => {
    const small = encodeResponse({ type: 'push', applied: 3, refused: 0 })
    expect(small.length).toBeLessThan(MIN_DEFLATE_BYTES)
    const noise = new Uint8Array(8192).map((_, i) => (i * 2654435761) >>> 24)
    for (const frame of [small, crypto.getRandomValues(new Uint8Array(8192)), noise]) {
      const packed = await packFrame(frame)
      if (packed[0] === FLAG_PLAIN) expect(packed.length).toBe(frame.length + 1)
      else expect(packed.length).toBeLessThan(frame.length + 1)
      expect(await unpackFrame(packed, MAX_FRAME_BYTES)).toEqual(frame)
    }
    expect((await packFrame(small))[0]).toBe(FLAG_PLAIN)
  })

  it('any frame goes through pack and unpack unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 4096 }), fc.string({ maxLength: 3000 }).map((s) => new TextEncoder().encode(s.repeat(3)))), async (frame) => {
        expect(await unpackFrame(await packFrame(frame), MAX_FRAME_BYTES)).toEqual(frame)
      }),
      { numRuns: 200 },
    )
  })

  it('refuses a frame that would inflate past the cap (a deflate bomb) without inflating it', async () => {
    const bomb = deflateRawSync(new Uint8Array(64 * 1024 * 1024))
    expect(bomb.length).toBeLessThan(100 * 1024)
    const frame = new Uint8Array([FLAG_DEFLATE, ...bomb])
    const before = process.memoryUsage().arrayBuffers
    await expect(unpackFrame(frame, MAX_FRAME_BYTES)).rejects.toMatchObject({ code: 'PROTOCOL_INVALID', message: expect.stringContaining(`inflates past ${MAX_FRAME_BYTES} bytes`) })
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024)
  })

  it('refuses an empty frame, an unknown flag, bytes that are not deflate and a truncated deflate stream, saying which', async () => {
    await expect(unpackFrame(new Uint8Array(0), MAX_FRAME_BYTES)).rejects.toThrow(/empty sync frame/)
    await expect(unpackFrame(new Uint8Array([7, 1, 2]), MAX_FRAME_BYTES)).rejects.toThrow(/unknown flag 7/)
    await expect(unpackFrame(new Uint8Array([FLAG_DEFLATE, 0xff, 0xff, 0xff, 0xff]), MAX_FRAME_BYTES)).rejects.toThrow(/not valid deflate/)
    const packed = await packFrame(rowPage())
    await expect(unpackFrame(packed.subarray(0, packed.length >> 1), MAX_FRAME_BYTES)).rejects.toThrow(/not valid deflate/)
  })

  it('never throws anything but a ProtocolError on hostile bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (bytes) => {
        bytes[0] = bytes[0]! % 3
        try {
          await unpackFrame(bytes, 4096)
        } catch (error) {
          expect((error as { code?: string }).code).toBe('PROTOCOL_INVALID')
        }
      }),
      { numRuns: 300 },
    )
  })
})
