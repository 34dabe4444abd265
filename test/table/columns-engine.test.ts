import { decode, encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { DeltaError, ValidationError } from '../../src/errors.js'
import { columnsEngine, MAX_STAMP } from '../../src/table/columns-engine.js'
import { hex, load, replica, stockSchema } from '../helpers/table.js'

/* What the columns engine does that the shared suites (merge laws, row documents) do not reach. */

const schema = stockSchema('columns')

describe('the columns engine', () => {
  it('sends a peer only the cells it lacks, and nothing once it has them', () => {
    const a = replica('columns', 'peer-a')
    const b = replica('columns', 'peer-b')
    b.applyDelta(a.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'Widget', price: 1, tags: ['x', 'y'], qty: 4 } }, schema)!)
    a.apply({ op: 'update', values: { price: 2 } }, schema)
    const missing = a.deltaSince(b.version())!
    // The price cell, its stamp and the causal length: not the whole row.
    expect(missing.length).toBeLessThan(a.encode().length / 2)
    expect(b.applyDelta(missing)).toBe('changed')
    expect(hex(b.digest())).toBe(hex(a.digest()))
    expect(a.deltaSince(b.version())).toBeNull()
    expect(b.deltaSince(a.version())).toBeNull()
  })

  it('repairs a lost change in one exchange, even when later changes arrived', () => {
    const a = replica('columns', 'peer-a')
    const b = replica('columns', 'peer-b')
    const d1 = a.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'one' } }, schema)!
    a.apply({ op: 'update', values: { price: 5 } }, schema) // lost on the way to b
    const d3 = a.apply({ op: 'increment', column: 'qty', by: 2 }, schema)!
    b.applyDelta(d3)
    b.applyDelta(d1)
    expect(b.state(schema).values.price).toBeNull()
    b.applyDelta(a.deltaSince(b.version())!)
    expect(b.state(schema)).toEqual(a.state(schema))
    expect(hex(b.digest())).toBe(hex(a.digest()))
  })

  it('keeps a register value with a "__proto__" key as data, never as a prototype', () => {
    const a = replica('columns', 'peer-a')
    const delta = a.apply({ op: 'put', values: { sku: 'A1', store: '7' } }, schema)!
    const [format, cl, actors, seqs] = decode(delta) as unknown[]
    const hostile = encode([format, cl, actors, seqs, [1, 'tags', '{"__proto__": {"polluted": true}}', 99, 0, 9], []])
    const b = load('columns', 'peer-b', a.encode())
    b.applyDelta(hostile)
    const tags = b.state(schema).values.tags as Record<string, unknown>
    expect(Object.getPrototypeOf(tags)).toBe(Object.prototype)
    expect(Object.keys(tags)).toEqual(['__proto__'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('refuses malformed deltas with DeltaError, saying what is wrong, and leaves the row as it was', () => {
    const a = replica('columns', 'peer-a')
    const delta = a.apply({ op: 'put', values: { sku: 'A1', store: '7', name: 'x' } }, schema)!
    const before = hex(a.digest())
    const [format, cl, actors, seqs, registers, counters] = decode(delta) as unknown[]
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array([0xff, 0x00]), /undecodable CBOR/],
      [encode([2, cl, actors, seqs, registers, counters]), /format 2/],
      [encode([format, -1, actors, seqs, registers, counters]), /causal length/],
      [encode([format, cl, actors, seqs, [1, 'name', '"y"', 1, 7, 1], counters]), /actor index 7 out of range/],
      [encode([format, cl, actors, seqs, [1, 'name', '{not json', 1, 0, 1], counters]), /not valid JSON/],
      [encode([format, cl, actors, seqs, [1, 'name', '"y"', MAX_STAMP + 1, 0, 1], counters]), /stamp is not a safe integer/],
      [encode([format, cl, actors, seqs, [0, 'name', '"y"', 1, 0, 1], counters]), /life 0/],
      [encode([format, cl, actors, seqs, registers, [1, 'qty', 0, 1.5, 1]]), /counter total/],
      [encode([format, cl, actors, seqs, [1, 'name'], counters]), /groups of 6/],
      [encode([format, cl, ['x'.repeat(300)], seqs, registers, counters]), /actor id/],
    ]
    for (const [bytes, message] of cases) {
      expect(() => a.applyDelta(bytes)).toThrow(DeltaError)
      expect(() => a.applyDelta(bytes)).toThrow(message)
      expect(hex(a.digest())).toBe(before)
    }
    expect(() => a.deltaSince(new Uint8Array([1, 2, 3]))).toThrow(/not a version of the columns engine/)
  })

  it('a row whose clock a peer pushed to the ceiling refuses further writes instead of writing what no peer could read', () => {
    const a = replica('columns', 'peer-a')
    const delta = a.apply({ op: 'put', values: { sku: 'A1', store: '7' } }, schema)!
    const [format, cl, actors, seqs] = decode(delta) as unknown[]
    a.applyDelta(encode([format, cl, actors, seqs, [1, 'name', '"pushed"', MAX_STAMP, 0, 2], []]))
    expect(() => a.apply({ op: 'update', values: { name: 'mine' } }, schema)).toThrow(ValidationError)
    // What it holds still reads and travels.
    expect(load('columns', 'peer-b', a.encode()).state(schema).values.name).toBe('pushed')
  })

  it('has no text cells: a text edit is refused, saying which engines have them', () => {
    expect(() => columnsEngine.create({ actor: 'a' }).change((w) => w.spliceText(1, 'notes', 0, 0, 'x'))).toThrow(/no text cells: give a table with text columns the yjs or automerge engine/)
  })
})
