import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import { decodeDeltaBatch, decodePartitionAnnouncement, encodeDeltaBatch, encodePartitionAnnouncement, GossipCoalescer, MAX_GOSSIP_BYTES, topicFor } from '../../src/sync/gossip.js'

describe('gossip messages', () => {
  it('round-trip any batch', () => {
    const key = fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !k.includes('\u0000'))
    fc.assert(
      fc.property(fc.constantFrom('stock', '_tables', 'sales_2'), fc.string({ maxLength: 10 }), fc.array(fc.record({ key, delta: fc.uint8Array({ minLength: 1, maxLength: 64 }) }), { minLength: 1, maxLength: 20 }), (table, partition, deltas) => {
        const batch = { table, partition, deltas }
        expect(decodeDeltaBatch(encodeDeltaBatch(batch))).toEqual(batch)
      }),
    )
  })

  it('refuses garbage, other versions, bad names and oversized messages with a ProtocolError', () => {
    const good = [1, 'deltas', 'stock', '7', [['A1', new Uint8Array([1])]]]
    const cases: Array<[Uint8Array, RegExp]> = [
      [new Uint8Array([0xff, 0x00, 0x13]), /not valid CBOR/],
      [encode({ v: 1 }), /not a \[version/],
      [encode([2, ...good.slice(1)]), /protocol version 2; this peer speaks 1/],
      [encode([1, 'rows', ...good.slice(2)]), /type "rows" is unknown/],
      [encode([1, 'deltas', '../etc', '7', good[4]]), /invalid table/],
      [encode([1, 'deltas', 'stock', '7', []]), /carries no deltas/],
      [encode([1, 'deltas', 'stock', '7', [['A1', 'not bytes']]]), /not a delta of 1/],
      [encode([1, 'deltas', 'stock', '7', [['', new Uint8Array([1])]]]), /invalid row key/],
      [new Uint8Array(MAX_GOSSIP_BYTES + 1), /over the 524288-byte limit/],
    ]
    for (const [bytes, message] of cases) {
      expect(() => decodeDeltaBatch(bytes)).toThrow(ProtocolError)
      expect(() => decodeDeltaBatch(bytes)).toThrow(message)
    }
  })
})

describe('gossip coalescer', () => {
  function harness(maxMessageBytes?: number) {
    const sent: Array<{ topic: string; message: Uint8Array }> = []
    const timers: Array<{ fn: () => void; cancelled: boolean }> = []
    const coalescer = new GossipCoalescer({
      publish: (topic, message) => sent.push({ topic, message }),
      schedule: (fn) => {
        const timer = { fn, cancelled: false }
        timers.push(timer)
        return () => {
          timer.cancelled = true
        }
      },
      ...(maxMessageBytes === undefined ? {} : { maxMessageBytes }),
    })
    const tick = (): void => {
      for (const t of timers.splice(0)) if (!t.cancelled) t.fn()
    }
    return { sent, coalescer, tick }
  }

  it('sends a change on a quiet topic at once, and the changes of the following window as one message', () => {
    const { sent, coalescer, tick } = harness()
    coalescer.add('stock', '7', 'A1', new Uint8Array([1]))
    coalescer.add('stock', '7', 'A2', new Uint8Array([2]))
    coalescer.add('stock', '7', 'A3', new Uint8Array([3]))
    coalescer.add('stock', '9', 'B1', new Uint8Array([4]))
    // leading edge: the first change of each quiet topic went out alone
    expect(sent.map((s) => [s.topic, decodeDeltaBatch(s.message).deltas.map((d) => d.key)])).toEqual([
      [topicFor('stock', '7'), ['A1']],
      [topicFor('stock', '9'), ['B1']],
    ])
    tick()
    expect(decodeDeltaBatch(sent[2]!.message).deltas.map((d) => d.key)).toEqual(['A2', 'A3'])
    expect(sent).toHaveLength(3)
    // the window that sent A2+A3 opened another; a change in it waits for it
    coalescer.add('stock', '7', 'A4', new Uint8Array([5]))
    expect(sent).toHaveLength(3)
    coalescer.flush()
    expect(sent).toHaveLength(4)
    tick()
    expect(sent).toHaveLength(4)
    // quiet again: the next change goes at once
    coalescer.add('stock', '7', 'A5', new Uint8Array([6]))
    expect(sent).toHaveLength(5)
  })

  it('splits at the size cap, never sends an oversized message, and refuses a delta too big to gossip', () => {
    const { sent, coalescer, tick } = harness(1000)
    for (let i = 0; i < 20; i++) expect(coalescer.add('stock', '7', `K${i}`, new Uint8Array(100).fill(i))).toBe(true)
    tick()
    expect(sent.length).toBeGreaterThan(2)
    for (const { message } of sent) expect(message.length).toBeLessThanOrEqual(1000)
    expect(sent.flatMap((s) => decodeDeltaBatch(s.message).deltas.map((d) => d.key))).toEqual(Array.from({ length: 20 }, (_, i) => `K${i}`))
    expect(coalescer.add('stock', '7', 'huge', new Uint8Array(2000))).toBe(false)
  })
})

describe('partition announcements', () => {
  it('round-trip with and without a first row and the announcing peer', () => {
    const first = { key: 'a', delta: new Uint8Array([1, 2, 3]) }
    for (const a of [
      { table: 'stock', partition: '7', first: null },
      { table: 'stock', partition: '7', first },
      { table: 'stock', partition: '', first: null, by: '12D3KooWexample' },
      { table: 'stock', partition: '7', first, by: '12D3KooWexample' },
    ]) {
      expect(decodePartitionAnnouncement(encodePartitionAnnouncement(a))).toEqual(a)
    }
  })

  it('refuses an announcing peer that is not a short non-empty string', () => {
    for (const by of ['', 'x'.repeat(129), 7, null, new Uint8Array(3)]) {
      expect(() => decodePartitionAnnouncement(encode([1, 'partition', 'stock', '7', null, by]))).toThrow(/invalid announcing peer/)
    }
    expect(() => decodePartitionAnnouncement(encode([1, 'partition', 'stock', '7', null, 'p', 'extra']))).toThrow(ProtocolError)
  })
})
