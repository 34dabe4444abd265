import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { sha256 } from '@noble/hashes/sha2.js'
import { rowHash } from '../../src/table/digest-tree.js'
import { utf8Length } from '../../src/table/hash.js'
import type { RowDocument, RowOp } from '../../src/table/row.js'
import { ENGINES, hex, load, replica, stockSchema } from '../helpers/table.js'

/*
 * The Yjs engine reads rows from the maps' item tables, memoises the causal length, detects
 * changes by clock and deletion totals and builds the canonical state straight from the structs.
 * Each is checked here against the straightforward version it replaced, on the same documents.
 */

const schema = stockSchema('yjs')

/** The canonical state as first written: through Y.createDeleteSetFromStructStore. */
function referenceCanonical(doc: Y.Doc): string {
  const clients = doc.store.clients
  const ds = Y.createDeleteSetFromStructStore(doc.store)
  const parts: number[] = []
  for (const client of [...clients.keys()].sort((a, b) => a - b)) {
    const structs = clients.get(client)!
    const last = structs[structs.length - 1]!
    parts.push(client, last.id.clock + last.length)
  }
  parts.push(-1)
  for (const client of [...ds.clients.keys()].sort((a, b) => a - b)) {
    const ranges = [...ds.clients.get(client)!].sort((a, b) => a.clock - b.clock)
    parts.push(client)
    let start = -1
    let end = -1
    for (const r of ranges) {
      if (start >= 0 && r.clock <= end) {
        end = Math.max(end, r.clock + r.len)
        continue
      }
      if (start >= 0) parts.push(start, end - start)
      start = r.clock
      end = r.clock + r.len
    }
    if (start >= 0) parts.push(start, end - start)
    parts.push(-2)
  }
  return hex(new Uint8Array(new Float64Array(parts).buffer))
}

function ydoc(bytes: Uint8Array): Y.Doc {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, bytes)
  return doc
}

/** The row's values read through the public Y.Map / Y.Text API, as the engine first did. */
function referenceState(bytes: Uint8Array): { alive: boolean; life: number; values: Record<string, unknown> } {
  const doc = ydoc(bytes)
  let life = 0
  for (const v of doc.getMap('l').values()) if (typeof v === 'number' && v > life) life = v
  if (life % 2 === 0) return { alive: false, life, values: {} }
  const values: Record<string, unknown> = { sku: null, store: null, name: null, price: null, active: null, tags: null, qty: 0, notes: '' }
  const prefix = `${life}:`
  for (const [k, v] of doc.getMap('r').entries()) if (k.startsWith(prefix)) values[k.slice(prefix.length)] = v
  const counters = new Map<string, number>()
  for (const [k, v] of doc.getMap('n').entries()) {
    if (!k.startsWith(prefix) || typeof v !== 'number') continue
    const column = k.slice(prefix.length, k.lastIndexOf(':'))
    counters.set(column, (counters.get(column) ?? 0) + v)
  }
  for (const [c, v] of counters) values[c] = v
  for (const name of doc.share.keys()) if (name.startsWith(`t:${prefix}`)) values[name.slice(`t:${prefix}`.length)] = doc.getText(name).toString()
  return { alive: true, life, values }
}

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    return s / 2 ** 32
  }
}

function randomOp(rand: () => number, row: RowDocument): RowOp {
  const alive = row.state(schema).alive
  const pick = rand()
  if (!alive || pick < 0.15) return { op: 'put', values: { sku: 'A1', store: '7', name: `n${Math.floor(rand() * 5)}`, qty: Math.floor(rand() * 20), notes: 'abc' } }
  if (pick < 0.35) return { op: 'update', values: { price: Math.floor(rand() * 100), active: rand() < 0.5 } }
  if (pick < 0.5) return { op: 'update', values: { qty: Math.floor(rand() * 50), notes: `t${Math.floor(rand() * 9)}` } }
  if (pick < 0.65) return { op: 'increment', column: 'qty', by: Math.floor(rand() * 7) - 3 }
  if (pick < 0.8) {
    const length = String(row.state(schema).values.notes).length
    const index = Math.floor(rand() * (length + 1))
    return { op: 'editText', column: 'notes', index, delete: Math.min(length - index, Math.floor(rand() * 3)), insert: rand() < 0.5 ? 'x' : '' }
  }
  if (pick < 0.9) return { op: 'update', values: { tags: { n: Math.floor(rand() * 3) } } }
  return { op: 'delete' }
}

describe('Yjs engine fast paths', () => {
  it('give the same states, canonical states and merge results as the public-API versions', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const rand = rng(seed)
      const peers = [replica('yjs', 'peer-a'), replica('yjs', 'peer-b'), replica('yjs', 'peer-c')]
      const sent: Uint8Array[][] = [[], [], []]
      for (let step = 0; step < 60; step++) {
        const i = Math.floor(rand() * peers.length)
        const row = peers[i]!
        if (rand() < 0.6) {
          const delta = row.apply(randomOp(rand, row), schema)
          if (delta !== null) sent[i]!.push(delta)
        } else {
          // Deliver a random earlier delta of another peer: duplicates and gaps (pending) happen.
          const from = (i + 1 + Math.floor(rand() * (peers.length - 1))) % peers.length
          const pool = sent[from]!
          if (pool.length === 0) continue
          const delta = pool[Math.floor(rand() * pool.length)]!
          const before = referenceCanonical(ydoc(row.encode()))
          const result = row.applyDelta(delta)
          const after = referenceCanonical(ydoc(row.encode()))
          if (after !== before) expect(result).toBe('changed')
          else expect(result).not.toBe('changed')
        }
        const bytes = row.encode()
        expect(row.state(schema)).toEqual(referenceState(bytes))
        expect(hex(row.doc.canonicalState())).toBe(referenceCanonical(ydoc(bytes)))
        // A freshly decoded copy (no memoised values) agrees with the live one.
        expect(load('yjs', 'peer-z', bytes).state(schema)).toEqual(row.state(schema))
      }
      // Everything delivered: all replicas converge, by state and by digest.
      for (const [i, row] of peers.entries()) for (const [j, pool] of sent.entries()) if (i !== j) for (const d of pool) row.applyDelta(d)
      const states = peers.map((p) => p.state(schema))
      expect(states[1]).toEqual(states[0])
      expect(states[2]).toEqual(states[0])
      expect(new Set(peers.map((p) => hex(p.digest()))).size).toBe(1)
    }
  })

  it('sees a delete that arrives by merge although the causal length was read before', () => {
    const a = replica('yjs', 'peer-a')
    const b = replica('yjs', 'peer-b')
    b.applyDelta(a.apply({ op: 'put', values: { sku: 'A1', store: '7', price: 1 } }, schema)!)
    expect(b.alive).toBe(true)
    b.applyDelta(a.apply({ op: 'delete' }, schema)!)
    expect(b.alive).toBe(false)
    expect(b.state(schema)).toEqual({ alive: false, life: 2, values: {} })
    b.apply({ op: 'put', values: { sku: 'A1', store: '7', price: 2 } }, schema)
    expect(b.state(schema)).toMatchObject({ alive: true, life: 3, values: { price: 2 } })
  })

  it('reads an update of plain columns without the row, and one of counters or texts relative to it', () => {
    const a = replica('yjs', 'peer-a')
    a.apply({ op: 'put', values: { sku: 'A1', store: '7', qty: 5, notes: 'hi' } }, schema)
    a.apply({ op: 'update', values: { price: 3 } }, schema)
    a.apply({ op: 'update', values: { qty: 8, notes: 'hello' } }, schema)
    expect(a.state(schema).values).toMatchObject({ price: 3, qty: 8, notes: 'hello' })
  })
})

describe.each(ENGINES)('remembered row state on %s', (engine) => {
  const s = stockSchema(engine)

  it('hands out copies, and follows every change, local or merged', () => {
    const a = replica(engine, 'peer-a')
    const b = replica(engine, 'peer-b')
    b.applyDelta(a.apply({ op: 'put', values: { sku: 'A1', store: '7', price: 1 } }, s)!)
    const first = a.state(s)
    ;(first.values as Record<string, unknown>).price = 99
    expect(a.state(s).values.price).toBe(1)
    expect(a.state(s)).not.toBe(a.state(s))
    const update = a.apply({ op: 'update', values: { price: 2 } }, s)!
    expect(a.state(s).values.price).toBe(2)
    expect(b.state(s).values.price).toBe(1)
    b.applyDelta(update)
    expect(b.state(s).values.price).toBe(2)
    b.applyDelta(a.apply({ op: 'increment', column: 'qty', by: 3 }, s)!)
    expect(b.state(s).values.qty).toBe(3)
    // Read with another schema (one more column): built for that schema, not the remembered one.
    const wider = { ...s, columns: { ...s.columns, extra: 'string' as const } }
    expect(b.state(wider).values.extra).toBeNull()
    expect('extra' in b.state(s).values).toBe(false)
    b.applyDelta(a.apply({ op: 'delete' }, s)!)
    expect(b.state(s)).toEqual({ alive: false, life: 2, values: {} })
  })
})

describe('rowHash', () => {
  it('is sha256(key ‖ 0 ‖ canonical state) truncated, for short, long and non-ASCII keys and big states', () => {
    const encoder = new TextEncoder()
    const cases: Array<[string, number]> = [['k', 24], ['row-000001', 40], ['ключ-😀', 56], ['x'.repeat(512), 16], ['é'.repeat(400), 3000], ['k', 24]]
    for (const [key, size] of cases) {
      const state = new Uint8Array(size).map((_, i) => (i * 31 + key.length) & 255)
      const k = encoder.encode(key)
      const input = new Uint8Array(k.length + 1 + size)
      input.set(k, 0)
      input.set(state, k.length + 1)
      expect(hex(rowHash(key, state))).toBe(hex(sha256(input).subarray(0, 16)))
    }
  })
})

describe('utf8Length', () => {
  it('counts what TextEncoder writes, surrogate pairs and lone surrogates included', () => {
    const encoder = new TextEncoder()
    const samples = ['', 'abc', 'é', '€', '😀', 'a😀b', '\ud800', '\udc00x', 'x\ud83d', '\ud83d\ud83d\ude00', 'ß'.repeat(300)]
    const rand = rng(7)
    for (let i = 0; i < 200; i++) {
      let s = ''
      const n = Math.floor(rand() * 12)
      for (let j = 0; j < n; j++) {
        const r = rand()
        s += r < 0.3 ? 'a' : r < 0.5 ? String.fromCharCode(0x80 + Math.floor(rand() * 0x780)) : r < 0.7 ? String.fromCharCode(0x800 + Math.floor(rand() * 0xf7ff)) : String.fromCharCode(0xd800 + Math.floor(rand() * 0x800))
      }
      samples.push(s)
    }
    for (const s of samples) expect(utf8Length(s)).toBe(encoder.encode(s).length)
  })
})
