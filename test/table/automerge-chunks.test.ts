import * as A from '@automerge/automerge'
import fc from 'fast-check'
import { deflateSync } from 'fflate'
import { describe, expect, it } from 'vitest'
import { ShoalError } from '../../src/errors.js'
import { measureAutomerge } from '../../src/table/automerge-chunks.js'

const UNLIMITED = { maxOps: Number.MAX_SAFE_INTEGER, maxValueBytes: Number.MAX_SAFE_INTEGER }

type Edit = { kind: 'set'; key: string; value: string } | { kind: 'splice'; at: number; del: number; text: string } | { kind: 'inc'; by: number }

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom('a', 'b', 'c'), value: fc.string({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(50), del: fc.nat(5), text: fc.string({ maxLength: 400 }) }),
  fc.record({ kind: fc.constant('inc' as const), by: fc.integer({ min: -5, max: 5 }) }),
)

function build(edits: Edit[][]): A.Doc<Record<string, unknown>> {
  let doc = A.change(A.init<Record<string, unknown>>(), (d) => {
    d.t = ''
    d.n = new A.Counter(0)
  })
  for (const group of edits) {
    doc = A.change(doc, (d) => {
      for (const e of group) {
        if (e.kind === 'set') d[e.key] = new A.ImmutableString(e.value)
        else if (e.kind === 'inc') (d.n as A.Counter).increment(e.by)
        else {
          const length = (d.t as string).length
          const at = Math.min(e.at, length)
          A.splice(d, ['t'], at, Math.min(e.del, length - at), e.text)
        }
      }
    })
  }
  return doc
}

describe('measuring Automerge bytes before loading them', () => {
  it('counts the operations Automerge itself counts, in documents and in changes', () => {
    fc.assert(
      fc.property(fc.array(fc.array(edit, { minLength: 1, maxLength: 6 }), { maxLength: 8 }), (edits) => {
        const doc = build(edits)
        const saved = measureAutomerge(A.save(doc), UNLIMITED)
        expect(saved.ops).toBe(A.stats(doc).numOps)
        let total = 0
        for (const change of A.getAllChanges(doc)) {
          const m = measureAutomerge(change, UNLIMITED)
          expect(m.ops).toBe(A.decodeChange(change).ops.length)
          total += m.ops
        }
        expect(measureAutomerge(A.saveSince(doc, []), UNLIMITED).ops).toBe(total)
        A.free(doc)
      }),
      { numRuns: 60 },
    )
  })

  it('refuses a small document that expands to a long text, before loading it', () => {
    let doc = A.change(A.init<Record<string, unknown>>(), (d) => {
      d.t = ''
    })
    doc = A.change(doc, (d) => A.splice(d, ['t'], 0, 0, 'a'.repeat(200_000)))
    const saved = A.save(doc)
    A.free(doc)
    expect(saved.length).toBeLessThan(2048)
    expect(() => measureAutomerge(saved, { maxOps: 100_000, maxValueBytes: 4 << 20 })).toThrow(/more than 100000 operations/)
    expect(() => measureAutomerge(saved, { maxOps: 1_000_000, maxValueBytes: 50_000 })).toThrow(/inflates to more than 50000 bytes/)
    expect(measureAutomerge(saved, { maxOps: 1_000_000, maxValueBytes: 4 << 20 }).ops).toBe(200_001)
  })

  it('refuses a compressed change that inflates past the limits', () => {
    const change = A.getLastLocalChange(A.change(A.init<Record<string, unknown>>(), (d) => {
      d.r = new A.ImmutableString('b'.repeat(2_000_000))
    }))!
    // Re-wrap the change payload as a compressed change chunk (type 2): raw DEFLATE of the payload.
    let pos = 9
    let length = 0
    let scale = 1
    for (;;) {
      const b = change[pos++]!
      length += (b & 0x7f) * scale
      scale *= 128
      if ((b & 0x80) === 0) break
    }
    const payload = change.subarray(pos, pos + length)
    const compressed = deflateSync(payload)
    const uleb: number[] = []
    let n = compressed.length
    do {
      uleb.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0))
      n = Math.floor(n / 128)
    } while (n > 0)
    const chunk = new Uint8Array([...change.subarray(0, 8), 2, ...uleb, ...compressed])
    expect(chunk.length).toBeLessThan(10_000)
    expect(() => measureAutomerge(chunk, { maxOps: 1000, maxValueBytes: 1 << 20 })).toThrow(/inflates to more than|more than .* bytes of values/)
    expect(measureAutomerge(chunk, { maxOps: 1000, maxValueBytes: 4 << 20 }).valueBytes).toBe(2_000_000)
  })

  it('answers garbage and truncated chunks with DeltaError, never anything else', () => {
    const valid = A.save(build([[{ kind: 'set', key: 'a', value: 'x'.repeat(50) }, { kind: 'splice', at: 0, del: 0, text: 'hello' }]]))
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.nat(valid.length - 1).map((cut) => valid.subarray(0, cut)), fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
        const copy = valid.slice()
        copy[i] = b
        return copy
      })), (bytes) => {
        try {
          measureAutomerge(bytes, { maxOps: 10_000, maxValueBytes: 1 << 20 })
        } catch (error) {
          expect(error).toBeInstanceOf(ShoalError)
          expect((error as ShoalError).code).toBe('DELTA_INVALID')
        }
      }),
      { numRuns: 500 },
    )
  })
})
