import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { ProtocolError } from '../../src/errors.js'
import {
  decodeRequest,
  decodeResponse,
  deflatedProtocol,
  encodeRequest,
  encodeResponse,
  MAX_FRAME_BYTES,
  MAX_KEYS_PER_REQUEST,
  feedProtocol,
  SYNC_PROTOCOLS,
  SYNC_PROTOCOLS_PLAIN,
  SYNC_VERSION,
  type SyncRequest,
  type SyncResponse,
} from '../../src/sync/sync-messages.js'

const root = new Uint8Array(16).fill(7)

describe('anti-entropy frames', () => {
  it('round-trip every request and response type', () => {
    const requests: SyncRequest[] = [
      { type: 'hello', carries: { stock: ['1', '2'] }, roots: [{ table: 'stock', partition: '1', root, rows: 3 }], next: { table: 'stock', partition: '1' } },
      { type: 'roots', after: { table: '_tables', partition: '' } },
      { type: 'children', table: 'stock', partition: '1', level: 2, nodes: [0, 255] },
      { type: 'leaves', table: '_tables', partition: '', leaves: [65535] },
      { type: 'range', table: 'stock', partition: '1', from: 0, to: 65536, after: { leaf: 9, key: 'k' }, maxBytes: 4096 },
      { type: 'fetch', table: 'stock', partition: '1', items: [{ key: 'a', version: null }, { key: 'b', version: new Uint8Array([1, 2]) }] },
      { type: 'push', table: 'stock', partition: '1', rows: [{ key: 'a', bytes: new Uint8Array([1]) }] },
      // The change feed (protocol 1.2.0).
      { type: 'hello', carries: {}, roots: [{ table: 'stock', partition: '1', root, rows: 3 }], next: null, feed: { epoch: '0123456789abcdef', seqs: [42] } },
      { type: 'changes', table: 'stock', partition: '1', epoch: '0123456789abcdef', after: 41, limit: 64, keys: ['a', 'b'] },
      { type: 'settle', table: 'stock', partition: '1', root, epoch: 'fedcba9876543210', seq: 7 },
    ]
    for (const r of requests) expect(decodeRequest(encodeRequest(r))).toEqual(r)
    const responses: Array<[SyncRequest['type'], SyncResponse]> = [
      ['hello', { type: 'hello', carries: {}, roots: [], next: null }],
      ['roots', { type: 'roots', roots: [{ table: 'stock', partition: '9', root, rows: 0 }], next: { table: 'stock', partition: '9' } }],
      ['children', { type: 'children', hashes: new Uint8Array(16 * 8) }],
      ['leaves', { type: 'leaves', rows: [{ leaf: 3, key: 'x', hash: new Uint8Array(8) }] }],
      ['range', { type: 'range', rows: [{ key: 'x', bytes: new Uint8Array([9]) }], next: null }],
      ['fetch', { type: 'fetch', rows: [{ key: 'x', bytes: null, version: new Uint8Array([1]) }] }],
      ['push', { type: 'push', applied: 2, refused: 1 }],
      ['push', { type: 'error', code: 'NOT_CARRIED', message: 'no' }],
      ['hello', { type: 'hello', carries: {}, roots: [{ table: 'stock', partition: '1', root, rows: 3 }], next: null, feed: { epoch: '0123456789abcdef', seqs: [42], have: [null] } }],
      ['changes', { type: 'changes', status: 'ok', seq: 50, rows: [{ key: 'a', hash: new Uint8Array(8) }, { key: 'b', hash: null }] }],
      ['changes', { type: 'changes', status: 'too-many', seq: 0, rows: [] }],
      ['settle', { type: 'settle', root, seq: 50 }],
    ]
    for (const [type, r] of responses) expect(decodeResponse(encodeResponse(r), type)).toEqual(r)
  })

  const bad: Array<[string, Uint8Array, RegExp]> = [
    ['not CBOR', new Uint8Array([0xff, 0x00, 0x13]), /not valid CBOR/],
    ['not an array', encode({ hello: 1 }), /not a \[version, type/],
    ['another version', encode([SYNC_VERSION + 1, 'hello', {}, []]), /protocol version 2; this peer speaks 1/],
    ['unknown type', encode([SYNC_VERSION, 'drop-tables']), /type "drop-tables" is unknown/],
    ['wrong arity', encode([SYNC_VERSION, 'leaves', 'stock', '1']), /must have 5 fields/],
    ['bad table name', encode([SYNC_VERSION, 'leaves', '../etc', '1', [1]]), /invalid table name/],
    ['leaf out of range', encode([SYNC_VERSION, 'leaves', 'stock', '1', [70000]]), /invalid leaf index/],
    ['level out of range', encode([SYNC_VERSION, 'children', 'stock', '1', 4, [0]]), /invalid tree level/],
    ['node out of range for its level', encode([SYNC_VERSION, 'children', 'stock', '1', 1, [16]]), /invalid node index/],
    ['too many keys', encode([SYNC_VERSION, 'fetch', 'stock', '1', Array.from({ length: MAX_KEYS_PER_REQUEST + 1 }, (_, i) => [`k${i}`, null])]), /over the limit/],
    ['empty row key', encode([SYNC_VERSION, 'push', 'stock', '1', [['', new Uint8Array([1])]]]), /invalid row key/],
    ['row key with NUL', encode([SYNC_VERSION, 'push', 'stock', '1', [['a\u0000b', new Uint8Array([1])]]]), /invalid row key/],
    ['row bytes not bytes', encode([SYNC_VERSION, 'push', 'stock', '1', [['a', 'text']]]), /invalid row bytes/],
    ['empty range', encode([SYNC_VERSION, 'range', 'stock', '1', 5, 5, null, 10]), /invalid range end/],
    ['oversized frame', new Uint8Array(MAX_FRAME_BYTES + 1), /over the .*-byte limit/],
  ]
  it.each(bad)('refuses a request that is %s with a ProtocolError', (_what, frame, message) => {
    expect(() => decodeRequest(frame)).toThrow(ProtocolError)
    expect(() => decodeRequest(frame)).toThrow(message)
  })

  it('refuses a response of another type than the request', () => {
    expect(() => decodeResponse(encodeResponse({ type: 'push', applied: 0, refused: 0 }), 'range')).toThrow(/response of type "push" to a 'range' request/)
  })

  it('the protocols: the feed on 1.2.0 and 1.2.0-plain, deflated frames on 1.2.0 and 1.1.0; a peer that does not deflate offers no deflated one', () => {
    expect(SYNC_PROTOCOLS.map((p) => [p, feedProtocol(p), deflatedProtocol(p)])).toEqual([
      ['/shoal/sync/1.2.0', true, true],
      ['/shoal/sync/1.2.0-plain', true, false],
      ['/shoal/sync/1.1.0', false, true],
      ['/shoal/sync/1.0.0', false, false],
    ])
    expect(SYNC_PROTOCOLS_PLAIN.some(deflatedProtocol)).toBe(false)
    expect(SYNC_PROTOCOLS_PLAIN.every((p) => SYNC_PROTOCOLS.includes(p))).toBe(true)
  })
})

// Found by the fuzzer (npm run fuzz): a CBOR integer past 2^53 decodes as a bigint, and the error
// message for it was built with JSON.stringify, which throws a TypeError on bigints.
describe('values the error messages cannot show as JSON', () => {
  it('refuses a bigint where a partition, table or integer belongs with ProtocolError', () => {
    const big = 2n ** 60n
    for (const frame of [
      encode([SYNC_VERSION, 'hello', { stock: [big] }, [], null]),
      encode([SYNC_VERSION, 'leaves', big, '1', []]),
      encode([SYNC_VERSION, 'leaves', 'stock', '1', [big]]),
      encode([big, 'hello']),
    ]) {
      expect(() => decodeRequest(frame)).toThrow(ProtocolError)
    }
  })
})
