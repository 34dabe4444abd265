import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { sha256 as browserSha256 } from '../../src/table/sha256.browser.js'
import { sha256 } from '../../src/table/sha256.js'
import { hex } from '../helpers/table.js'

describe('sha256', () => {
  it('gives the same digest in Node and in the browser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const digest = sha256(bytes)
        expect(hex(digest)).toBe(hex(nobleSha256(bytes)))
        expect(hex(browserSha256(bytes))).toBe(hex(digest))
        // A plain array of its own, not a view into a shared Buffer pool.
        expect(digest.constructor).toBe(Uint8Array)
        expect(digest.byteLength).toBe(32)
        expect(digest.buffer.byteLength).toBe(32)
      }),
    )
  })
})
