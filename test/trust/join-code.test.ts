import fc from 'fast-check'
import { encode } from 'cborg'
import { base64url } from 'multiformats/bases/base64'
import { describe, expect, it } from 'vitest'
import { decodeJoinCode, encodeJoinCode, MAX_JOIN_CODE_CHARS } from '../../src/trust/join-code.js'
import { TrustError } from '../../src/trust/errors.js'

const MESH = '12D3KooWQm2GkLPKJ2zCs2S6mAh1DiT4Y8P6kZ1E6LFcsxR7aFjW'

describe('join codes', () => {
  it('carry the mesh id and its documents through a URL fragment unchanged', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 }), (documents) => {
        const code = encodeJoinCode({ mesh: MESH, documents })
        expect(code).toMatch(/^[A-Za-z0-9_-]+$/)
        expect(decodeJoinCode(code)).toEqual({ mesh: MESH, documents })
      }),
    )
  })

  it('refuses anything else with JOIN_CODE_INVALID, saying what is wrong and what to do', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /is empty/],
      ['!!!', /not base64url-encoded CBOR/],
      [base64url.baseEncode(encode([1, 'join', MESH])), /is not a \[version, "join", mesh, documents\] array/],
      [base64url.baseEncode(encode([2, 'join', MESH, [new Uint8Array([1])]])), /has version 2/],
      [base64url.baseEncode(encode([1, 'join', 'not a mesh', [new Uint8Array([1])]])), /names no valid mesh id/],
      [base64url.baseEncode(encode([1, 'join', MESH, []])), /must hold 1 to/],
      [base64url.baseEncode(encode([1, 'join', MESH, ['text']])), /holds a document that is not/],
      [base64url.baseEncode(encode([1, 'join', MESH, [new Uint8Array(70 * 1024)]])), /holds a document that is not/],
      ['A'.repeat(MAX_JOIN_CODE_CHARS + 1), /characters long/],
    ]
    for (const [code, message] of cases) {
      let error: unknown
      try {
        decodeJoinCode(code)
      } catch (e) {
        error = e
      }
      expect(error, code.slice(0, 40)).toBeInstanceOf(TrustError)
      expect((error as TrustError).code).toBe('JOIN_CODE_INVALID')
      expect((error as TrustError).message).toMatch(message)
      expect((error as TrustError).message).toMatch(/ask the mesh authority for a new admission link/)
    }
  })

  it('never throws anything but JOIN_CODE_INVALID on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        try {
          decodeJoinCode(text)
        } catch (error) {
          expect((error as TrustError).code).toBe('JOIN_CODE_INVALID')
        }
      }),
    )
  })
})
