import { deflateRawSync } from 'node:zlib'
import { decode, encode } from 'cborg'
import fc from 'fast-check'
import { ProtocolError } from '../../src/errors.js'
import type { Rng } from '../../src/sim/core/rng.js'
import { answer } from '../../src/sync/reconciler.js'
import { StoreReplica } from '../../src/sync/store-replica.js'
import { FLAG_DEFLATE, FLAG_PLAIN, unpackFrame } from '../../src/sync/frame-compression.js'
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, MAX_FRAME_BYTES, SYNC_VERSION, type SyncRequest } from '../../src/sync/sync-messages.js'
import { LEAF_COUNT } from '../../src/table/digest-tree.js'
import { toHex } from '../../src/table/hash.js'
import { validDeltas } from '../deltas.js'
import { Crash, type FuzzTarget, type TargetSession, type Verdict } from '../harness.js'
import { mutateBytes, mutateValue } from '../mutate.js'
import { checkProblems, fingerprint, KEYS, openReference, referenceKey, REFERENCE_TABLES, snapshot, STORES } from '../reference.js'

/*
 * Anti-entropy frames (/shoal/sync/1.0.0, and 1.1.0's flag byte + deflate: a third of the
 * requests are wrapped, plain or deflated, and sometimes mutated after wrapping, so unpackFrame
 * meets bad flags, broken deflate and bombs). Requests go through decodeRequest and then the
 * responder, `answer`, over a StoreReplica of the reference store (so fetch, range, leaves,
 * children read real digest trees and rows, and push merges through the store's remote apply);
 * the answer must itself encode to a frame the asker can decode. Responses go through
 * decodeResponse for a request type. Documented refusals: ProtocolError from the decoders, and
 * error answers with a ShoalError's code (an INTERNAL one is a crash).
 */

type Input = { side: 'request'; bytes: Uint8Array; wrapped?: boolean } | { side: 'response'; to: SyncRequest['type']; bytes: Uint8Array }

const REQUEST_TYPES: ReadonlyArray<SyncRequest['type']> = ['hello', 'roots', 'children', 'leaves', 'range', 'fetch', 'push']
const TABLES = [...REFERENCE_TABLES.map((t) => t.name), '_tables']
const VOCABULARY = [...REQUEST_TYPES, 'error', ...TABLES, ...STORES, '', 'nope']
/** Partitions named in frames; '4' is not carried by the replica below. */
const PARTITIONS = [...STORES, '', '4']

function keysOf(table: string): string[] {
  if (table === '_tables') return REFERENCE_TABLES.map((t) => t.name)
  if (table === 'catalog') return KEYS.map((k) => `SKU-${k}`)
  return STORES.flatMap((s) => KEYS.map((k) => referenceKey(table, s, k)))
}

const tableArb = fc.constantFrom(...TABLES)
const partitionArb = fc.oneof(fc.constantFrom(...PARTITIONS), fc.string({ maxLength: 8 }))
const keyArb = fc.oneof(fc.constantFrom(...keysOf('stock'), ...keysOf('sales'), ...keysOf('catalog'), ...keysOf('_tables')), fc.string({ minLength: 1, maxLength: 12 }))
const leafArb = fc.integer({ min: 0, max: LEAF_COUNT - 1 })
const bytesArb = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max })
const rootArb = fc.record({ table: tableArb, partition: partitionArb, root: bytesArb(32, 32), rows: fc.nat(1000) })
const cursorArb = fc.option(fc.record({ table: tableArb, partition: partitionArb }), { nil: null })

/** Valid requests of every type (structure right; names mostly those of the reference). */
const requestArb: fc.Arbitrary<SyncRequest> = fc.oneof(
  fc.record({ type: fc.constant('hello' as const), carries: fc.dictionary(fc.constantFrom(...TABLES.slice(0, 3)), fc.array(partitionArb, { maxLength: 3 })), roots: fc.array(rootArb, { maxLength: 4 }), next: cursorArb }),
  fc.record({ type: fc.constant('roots' as const), after: fc.record({ table: tableArb, partition: partitionArb }) }),
  fc.integer({ min: 0, max: 3 }).chain((level) =>
    fc.record({ type: fc.constant('children' as const), table: tableArb, partition: partitionArb, level: fc.constant(level), nodes: fc.array(fc.integer({ min: 0, max: 16 ** level - 1 }), { maxLength: 6 }) }),
  ),
  fc.record({ type: fc.constant('leaves' as const), table: tableArb, partition: partitionArb, leaves: fc.array(leafArb, { maxLength: 8 }) }),
  leafArb.chain((from) =>
    fc.record({
      type: fc.constant('range' as const),
      table: tableArb,
      partition: partitionArb,
      from: fc.constant(from),
      to: fc.integer({ min: from + 1, max: LEAF_COUNT }),
      after: fc.option(fc.record({ leaf: leafArb, key: keyArb }), { nil: null }),
      maxBytes: fc.integer({ min: 1, max: 300_000 }),
    }),
  ),
  fc.record({ type: fc.constant('fetch' as const), table: tableArb, partition: partitionArb, items: fc.array(fc.record({ key: keyArb, version: fc.option(bytesArb(0, 40), { nil: null }) }), { maxLength: 5 }) }),
  fc.record({ type: fc.constant('push' as const), table: tableArb, partition: partitionArb, rows: fc.array(fc.record({ key: keyArb, bytes: bytesArb(1, 60) }), { maxLength: 3 }) }),
)

function show(input: unknown): string {
  const i = input as Input
  return `${i.side}${i.side === 'response' ? ` to ${i.to}` : i.wrapped === true ? ' (1.1.0)' : ''} ${i.bytes.length} B ${toHex(i.bytes.subarray(0, 160))}`
}

export const syncFrames: FuzzTarget = {
  name: 'sync-frames',
  what: 'anti-entropy frames → decodeRequest + answer() over a StoreReplica of a LevelDB reference; decodeResponse',
  weight: 22,
  deadlineMs: 10_000,
  async open(setup: Rng): Promise<TargetSession> {
    const ref = await openReference('sync')
    const db = ref.db
    const replica = new StoreReplica(db.replication(), { stock: STORES, sales: STORES })
    const fcSeed = setup.int(0, 2 ** 31 - 1)
    const requests: SyncRequest[] = fc.sample(requestArb, { seed: fcSeed, numRuns: 600 })
    // Requests a real peer would send: real rows (whole and deltas) and versions of the reference.
    for (const d of await validDeltas(db, setup, 150)) requests.push({ type: 'push', table: d.table, partition: d.partition, rows: [{ key: d.key, bytes: d.bytes }] })
    for (const table of REFERENCE_TABLES) {
      for (const partition of (table.partitionBy ?? null) === null ? [''] : STORES) {
        const keys = keysOf(table.name).filter((k) => (table.partitionBy ?? null) === null || k.startsWith(partition))
        const rows = await replica.fetch(table.name, partition, keys.map((key) => ({ key, version: null })))
        const held = await replica.versions(table.name, partition, keys)
        const versions = keys.map((key, i) => ({ key, version: held[i] ?? null }))
        requests.push({ type: 'fetch', table: table.name, partition, items: versions })
        requests.push({ type: 'push', table: table.name, partition, rows: rows.flatMap((r) => (r.bytes === null ? [] : [{ key: r.key, bytes: r.bytes }])) })
        requests.push({ type: 'range', table: table.name, partition, from: 0, to: LEAF_COUNT, after: null, maxBytes: 4096 })
        requests.push({ type: 'children', table: table.name, partition, level: 1, nodes: [0, 1, 2, 3, 15] })
      }
    }
    const requestSeeds = requests.map(encodeRequest)
    // Responses: what the responder really answers to those requests.
    const responseSeeds: Array<{ to: SyncRequest['type']; bytes: Uint8Array }> = []
    for (const req of requests.filter((r) => r.type !== 'push').slice(0, 300)) responseSeeds.push({ to: req.type, bytes: encodeResponse(await answer(replica, req, 'seed')) })
    const seeds = [...requestSeeds, ...responseSeeds.map((r) => r.bytes)]
    return {
      next(rng: Rng): Input {
        const request = rng.chance(0.8)
        const base = request ? { side: 'request' as const, bytes: rng.pick(requestSeeds) } : { side: 'response' as const, ...rng.pick(responseSeeds) }
        const roll = rng.int(0, 99)
        let bytes = base.bytes
        if (roll < 15) return base
        if (roll < 60) {
          // Structure first: decode, change one node, encode again; then, sometimes, a byte too.
          const value = decode(bytes) as unknown
          for (let k = rng.int(1, 3); k > 0; k--) bytes = encodeSafely(rng, mutateValue(rng, value, VOCABULARY)) ?? bytes
          if (rng.chance(0.2)) bytes = mutateBytes(rng, bytes, seeds)
        } else {
          for (let k = rng.int(1, 3); k > 0; k--) bytes = mutateBytes(rng, bytes, seeds)
        }
        if (base.side === 'response' && rng.chance(0.1)) return { side: 'response', to: rng.pick(REQUEST_TYPES), bytes }
        if (base.side === 'request' && rng.chance(0.33)) {
          const body = rng.chance(0.7) ? deflateRawSync(bytes) : bytes
          let wrapped = new Uint8Array([body === bytes ? FLAG_PLAIN : FLAG_DEFLATE, ...body])
          if (rng.chance(0.3)) wrapped = new Uint8Array(mutateBytes(rng, wrapped, seeds))
          return { side: 'request', bytes: wrapped, wrapped: true }
        }
        return { ...base, bytes }
      },
      async run(input: unknown): Promise<Verdict | Crash> {
        const i = input as Input
        if (i.side === 'response') {
          try {
            decodeResponse(i.bytes, i.to)
            return 'unchanged'
          } catch (error) {
            if (error instanceof ProtocolError) return 'refused'
            throw error
          }
        }
        let req: SyncRequest
        try {
          req = decodeRequest(i.wrapped === true ? await unpackFrame(i.bytes, MAX_FRAME_BYTES) : i.bytes)
        } catch (error) {
          if (error instanceof ProtocolError) return 'refused'
          throw error
        }
        const res = await answer(replica, req, 'fuzz-peer')
        if (res.type === 'error' && res.code === 'INTERNAL') return new Crash(`answer to '${req.type}' failed with an untyped error: ${res.message}`)
        // What we answer must be a frame the asker decodes.
        try {
          decodeResponse(encodeResponse(res), req.type)
        } catch (error) {
          return new Crash(`the answer to '${req.type}' does not decode: ${(error as Error).message}`)
        }
        if (res.type === 'error') return 'refused'
        // A row neither applied nor refused may be held until its dependencies arrive ('pending'),
        // which stores it: only a push refused whole must leave everything as it was.
        if (res.type === 'push' && req.type === 'push') return req.rows.length === 0 ? 'unchanged' : res.refused === req.rows.length ? 'refused' : 'changed'
        return 'unchanged'
      },
      show,
      fingerprint: () => fingerprint(db),
      snapshot: () => snapshot(db),
      check: () => checkProblems(db),
      close: () => ref.close(),
    }
  },
}

/** CBOR of a mutated value, or null when cborg cannot encode it (undefined inside maps is fine; some shapes are not). */
function encodeSafely(rng: Rng, value: unknown): Uint8Array | null {
  try {
    return encode(value)
  } catch {
    return rng.chance(0.5) ? encode([SYNC_VERSION, 'hello']) : null
  }
}
